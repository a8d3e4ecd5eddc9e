// What the shim's files share.
#pragma once
#include <cstdint>
#include <exception>
#include <functional>

// Keeps the message of `e` for byol_last_error: libtorch's own errors without
// the C++ stack trace they carry.
void remember(const std::exception& e);

// at::parallel_for's split of [0, n) over libtorch's intra-op threads, which
// the shim cannot use as it is: with the wheel's OpenMP backend its body is a
// header-inline `#pragma omp parallel`, and the shim is not compiled with
// OpenMP, so it would run on one thread. Chunks of at least `grain` items on
// at most at::get_num_threads() threads (this one included); inside a
// parallel region, or with one thread, `f(0, n)` here.
void parallel_chunks(int64_t n, int64_t grain, const std::function<void(int64_t, int64_t)>& f);
