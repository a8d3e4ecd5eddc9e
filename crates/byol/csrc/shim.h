// What the shim's files share.
#pragma once
#include <cstdint>
#include <exception>
#include <functional>

// Keeps the message of `e` for byol_last_error: libtorch's own errors without
// the C++ stack trace they carry.
void remember(const std::exception& e);

// [0, n) split over libtorch's intra-op threads, in chunks of at least
// `grain` items, on the calling thread's OpenMP team, ATen's own (the shim is
// compiled with -fopenmp). Not at::parallel_for: its header-inline body would
// run this library's own copy of ATen's once-per-thread setup, which takes
// the process-wide thread count of the moment; after a data worker has set
// its own count to 1, a training thread's first shim loop would drop that
// thread, ATen's kernels included, to one thread. Inside a parallel region,
// or with one thread, `f(0, n)` here.
void parallel_chunks(int64_t n, int64_t grain, const std::function<void(int64_t, int64_t)>& f);

// Whether ATen runs its AVX2 or AVX512 kernel builds, which are compiled
// with FMA on, so that GCC fuses their `a * b + c` into one rounding. The
// shim's kernels that redo ATen's arithmetic (batchnorm.cpp, resize.cpp)
// fuse where those builds do, and so are taken only here.
bool aten_fma_kernels();
