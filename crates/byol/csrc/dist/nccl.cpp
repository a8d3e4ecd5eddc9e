// c10d::ProcessGroupNCCL for CUDA tensors. This file is built into a library
// of its own, libbyol_nccl.so, linked against libtorch_cuda: the addon never
// links it, so that a CPU host maps none of the CUDA libraries. The loader
// (src/native.ts) opens it after libtorch_cuda on a host with a CUDA driver,
// with RTLD_GLOBAL, and csrc/dist/group.cpp finds its one entry point with
// dlsym; where it is not loaded, NCCL is reported missing.
#include <torch/csrc/distributed/c10d/ProcessGroupNCCL.hpp>

#include <cstdio>
#include <exception>

#include "../version.h"

extern "C" {

// A new NCCL backend of `size` ranks over `store` (a c10d::Store
// intrusive_ptr, borrowed), each collective bounded by `timeout_ms`: a
// reference handed over (intrusive_ptr::release), or null with the reason in
// `error` (NUL-terminated, at most `len` bytes). No exception leaves it: the
// caller is another library.
__attribute__((visibility("default"))) c10d::Backend* byol_nccl_backend_new(const void* store, int rank, int size,
                                                                           int64_t timeout_ms, char* error, size_t len) {
  try {
    const auto& s = *static_cast<const c10::intrusive_ptr<c10d::Store>*>(store);
    auto options = c10d::ProcessGroupNCCL::Options::create();
    options->timeout = std::chrono::milliseconds(timeout_ms);
    auto group = c10::make_intrusive<c10d::ProcessGroupNCCL>(s, rank, size, options);
    return group.release();
  } catch (const c10::Error& e) {
    std::snprintf(error, len, "%s", e.what_without_backtrace());
  } catch (const std::exception& e) {
    std::snprintf(error, len, "%s", e.what());
  }
  return nullptr;
}

}  // extern "C"
