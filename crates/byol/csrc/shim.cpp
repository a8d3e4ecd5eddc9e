// What tch does not expose: autocast controls (tch's `autocast` only switches
// CUDA autocast on with fp16; BYOL in bf16 needs the dtype, and CPU autocast
// the CPU device type), `add` with an `alpha` (PyTorch's optimisers step with
// `p.add_(d, alpha=-lr)`, one rounding; `p += d * -lr` rounds twice and BYOL
// amplifies the difference), and libtorch's CPU capability. Exceptions never
// cross into Rust.
#include <ATen/autocast_mode.h>
#include <ATen/ATen.h>
#include <ATen/Version.h>
#include <cstring>
#include <string>

namespace {
c10::DeviceType device_type(int cuda) { return cuda ? c10::DeviceType::CUDA : c10::DeviceType::CPU; }
thread_local std::string last_error;
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

// self.add_(other, alpha). Returns 0, or -1 (see byol_last_error).
int byol_add_(at::Tensor* self, const at::Tensor* other, double alpha) {
  try {
    self->add_(*other, alpha);
    return 0;
  } catch (const std::exception& e) {
    last_error = e.what();
    return -1;
  }
}

// self.add(other, alpha) as a new tensor, or null (see byol_last_error).
at::Tensor* byol_add(const at::Tensor* self, const at::Tensor* other, double alpha) {
  try {
    return new at::Tensor(self->add(*other, alpha));
  } catch (const std::exception& e) {
    last_error = e.what();
    return nullptr;
  }
}

// libtorch's kernel level on this CPU ("AVX512", "AVX2", "DEFAULT"), as
// torch.backends.cpu.get_cpu_capability(), NUL-terminated in `out` (at most
// `len` bytes). Returns 0, or -1 (see byol_last_error).
int byol_cpu_capability(char* out, size_t len) {
  try {
    std::string c = at::get_cpu_capability();
    if (len == 0) return -1;
    size_t n = std::min(c.size(), len - 1);
    std::memcpy(out, c.data(), n);
    out[n] = '\0';
    return 0;
  } catch (const std::exception& e) {
    last_error = e.what();
    return -1;
  }
}

}
