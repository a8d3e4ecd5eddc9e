// What tch does not expose: autocast controls (tch's `autocast` only switches
// CUDA autocast on with fp16; BYOL in bf16 needs the dtype, and CPU autocast
// the CPU device type), `add` and `_foreach_add_` with an `alpha` (PyTorch's
// optimisers step with `p.add_(d, alpha=-lr)`, one rounding; `p += d * -lr`
// rounds twice and BYOL amplifies the difference), the fused EMA, inference
// mode, and libtorch's CPU capability. Exceptions never cross into Rust.
#include <ATen/autocast_mode.h>
#include <ATen/ATen.h>
#include <ATen/Parallel.h>
#include <ATen/Version.h>
#include <omp.h>
#include <c10/core/InferenceMode.h>
#include <algorithm>
#include <cstring>
#include <string>
#include <vector>

#include "shim.h"
#include "version.h"

namespace {
c10::DeviceType device_type(int cuda) { return cuda ? c10::DeviceType::CUDA : c10::DeviceType::CPU; }
thread_local std::string last_error;
}

void remember(const std::exception& e) {
  const auto* c10 = dynamic_cast<const c10::Error*>(&e);
  last_error = c10 ? c10->what_without_backtrace() : e.what();
}

void parallel_chunks(int64_t n, int64_t grain, const std::function<void(int64_t, int64_t)>& f) {
  const int64_t most = grain > 0 ? std::max<int64_t>(1, n / grain) : n;
  const int64_t threads = std::min<int64_t>(at::get_num_threads(), most);
  if (threads <= 1 || omp_in_parallel()) {
    if (n > 0) f(0, n);
    return;
  }
  std::exception_ptr error;
#pragma omp parallel num_threads(threads)
  {
    const int64_t team = omp_get_num_threads(), t = omp_get_thread_num();
    const int64_t chunk = (n + team - 1) / team;
    const int64_t begin = t * chunk, end = std::min(n, begin + chunk);
    if (begin < end) {
      try {
        f(begin, end);
      } catch (...) {
#pragma omp critical(byol_parallel_chunks)
        if (!error) error = std::current_exception();
      }
    }
  }
  if (error) std::rethrow_exception(error);
}

bool aten_fma_kernels() {
#if defined(__x86_64__)
  static const bool fused = [] {
    const std::string c = at::get_cpu_capability();
    return c == "AVX2" || c == "AVX512";
  }();
  return fused;
#else
  return false;
#endif
}

extern "C" {

// Turns autocast on for the device with `dtype` (0: bfloat16, 1: float16).
// Returns 0, or -1 when libtorch refuses.
int byol_autocast_enter(int cuda, int dtype) {
  try {
    auto dev = device_type(cuda);
    at::autocast::set_autocast_dtype(dev, dtype == 0 ? at::kBFloat16 : at::kHalf);
    at::autocast::set_autocast_enabled(dev, true);
    at::autocast::increment_nesting();
    return 0;
  } catch (...) {
    return -1;
  }
}

// Turns autocast off again and, at the outermost level, frees the cache of
// weights cast to the low-precision dtype (as torch.autocast's __exit__ does).
int byol_autocast_exit(int cuda) {
  try {
    at::autocast::set_autocast_enabled(device_type(cuda), false);
    if (at::autocast::decrement_nesting() == 0) {
      at::autocast::clear_cache();
    }
    return 0;
  } catch (...) {
    return -1;
  }
}


// The message of the last failed call on this thread.
const char* byol_last_error() { return last_error.c_str(); }

// ema[i] = ema[i] * m + online[i] * (1 - m) for each pair: lightly's
// update_momentum. A contiguous float32 CPU pair takes one pass over memory,
// without temporaries, split over libtorch's intra-op threads; each product and the sum are
// rounded to float32 as ATen's three ops round them (build.rs compiles this
// file with -ffp-contract=off, so no FMA merges them), so the result is
// bit-identical. Any other pair goes through those three ops. Returns 0, or
// -1 (see byol_last_error).
int byol_ema_update(const at::Tensor* const* ema, const at::Tensor* const* online, size_t n, double m) {
  try {
    at::NoGradGuard no_grad;
    const float keep = static_cast<float>(m);
    const float take = static_cast<float>(1.0 - m);
    for (size_t i = 0; i < n; ++i) {
      const at::Tensor& e = *ema[i];
      const at::Tensor& o = *online[i];
      const bool fast = e.device().is_cpu() && o.device().is_cpu() && e.scalar_type() == at::kFloat &&
                        o.scalar_type() == at::kFloat && e.is_contiguous() && o.is_contiguous() && e.sizes() == o.sizes() &&
                        !e.is_same(o);
      if (fast) {
        float* __restrict ep = e.data_ptr<float>();
        const float* __restrict op = o.const_data_ptr<float>();
        // Split only where a tensor is large enough to pay for a thread.
        parallel_chunks(e.numel(), int64_t{1} << 19, [&](int64_t begin, int64_t end) {
          for (int64_t k = begin; k < end; ++k) ep[k] = ep[k] * keep + op[k] * take;
        });
        e.unsafeGetTensorImpl()->bump_version();
      } else {
        at::Tensor scaled = o.mul(1.0 - m);
        e.mul_(m);
        e.add_(scaled);
      }
    }
    return 0;
  } catch (const std::exception& ex) {
    remember(ex);
    return -1;
  }
}

// at::_foreach_add_(self, other, alpha): self[i].add_(other[i], alpha) for
// every i in one call (one kernel launch per list on CUDA; on the CPU the same
// per-tensor kernels, without a call across the FFI each). Returns 0, or -1.
int byol_foreach_add_(const at::Tensor* const* self, const at::Tensor* const* other, size_t n, double alpha) {
  try {
    std::vector<at::Tensor> a(n), b(n);
    for (size_t i = 0; i < n; ++i) {
      a[i] = *self[i];
      b[i] = *other[i];
    }
    at::_foreach_add_(a, b, alpha);
    return 0;
  } catch (const std::exception& e) {
    remember(e);
    return -1;
  }
}

// at::_foreach_mul_(self, scalar). Returns 0, or -1.
int byol_foreach_mul_(const at::Tensor* const* self, size_t n, double scalar) {
  try {
    std::vector<at::Tensor> a(n);
    for (size_t i = 0; i < n; ++i) a[i] = *self[i];
    at::_foreach_mul_(a, scalar);
    return 0;
  } catch (const std::exception& e) {
    remember(e);
    return -1;
  }
}

// An inference-mode guard (c10::InferenceMode) for this thread, or null;
// byol_inference_mode_exit ends it. Guards end in the reverse order.
void* byol_inference_mode_enter() {
  try {
    return new c10::InferenceMode(true);
  } catch (const std::exception& e) {
    remember(e);
    return nullptr;
  }
}

void byol_inference_mode_exit(void* guard) { delete static_cast<c10::InferenceMode*>(guard); }

// self.add(other, alpha) as a new tensor, or null (see byol_last_error).
at::Tensor* byol_add(const at::Tensor* self, const at::Tensor* other, double alpha) {
  try {
    return new at::Tensor(self->add(*other, alpha));
  } catch (const std::exception& e) {
    remember(e);
    return nullptr;
  }
}

// libtorch's kernel level on this CPU ("AVX512", "AVX2", "DEFAULT"), as
// torch.backends.cpu.get_cpu_capability(), NUL-terminated in `out` (at most
// `len` bytes). Returns 0, or -1 (see byol_last_error).
// torch.backends' CUDA switches, process-wide in ATen's context as in
// PyTorch: cudnn.allow_tf32, cuda.matmul.allow_tf32, cudnn.deterministic,
// cudnn.benchmark. Each of `set` that is -1 is left; `out` gets all four.
int byol_cuda_math(const int* set, int* out) {
  try {
    auto& c = at::globalContext();
    if (set[0] >= 0) c.setAllowTF32CuDNN(set[0] != 0);
    if (set[1] >= 0) c.setAllowTF32CuBLAS(set[1] != 0);
    if (set[2] >= 0) c.setDeterministicCuDNN(set[2] != 0);
    if (set[3] >= 0) c.setBenchmarkCuDNN(set[3] != 0);
    out[0] = c.allowTF32CuDNN();
    out[1] = c.allowTF32CuBLAS();
    out[2] = c.deterministicCuDNN();
    out[3] = c.benchmarkCuDNN();
    return 0;
  } catch (const std::exception& e) {
    remember(e);
    return -1;
  }
}

int byol_cpu_capability(char* out, size_t len) {
  try {
    std::string c = at::get_cpu_capability();
    if (len == 0) return -1;
    size_t n = std::min(c.size(), len - 1);
    std::memcpy(out, c.data(), n);
    out[n] = '\0';
    return 0;
  } catch (const std::exception& e) {
    remember(e);
    return -1;
  }
}

// Ends the calling thread's OpenMP team: its threads exit, and the thread's
// next parallel region starts a new one with the same thread count. Inside
// a parallel region, nothing.
void byol_release_thread_team() {
  if (!omp_in_parallel()) omp_pause_resource_all(omp_pause_soft);
}

}
