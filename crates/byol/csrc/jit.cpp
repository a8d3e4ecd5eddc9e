// A TorchScript module held by the shim rather than by tch's CModule, which
// lists a module's parameters but not its buffers: a BatchNorm inside a
// scripted backbone keeps running statistics that a saved model must hold.
// Exceptions never cross into Rust: each call returns null or -1 and keeps
// the message for byol_last_error.
#include <torch/script.h>

#include <string>
#include <vector>

#include "shim.h"

extern "C" {

// torch::jit::load on the device (`cuda` < 0: CPU, else that CUDA index).
void* byol_jit_load(const char* path, int cuda) {
  try {
    const c10::Device device = cuda < 0 ? c10::Device(c10::kCPU) : c10::Device(c10::kCUDA, static_cast<c10::DeviceIndex>(cuda));
    return new torch::jit::Module(torch::jit::load(path, device));
  } catch (const std::exception& e) {
    remember(e);
    return nullptr;
  }
}

void byol_jit_free(void* module) { delete static_cast<torch::jit::Module*>(module); }

int byol_jit_train(void* module, int on) {
  try {
    static_cast<torch::jit::Module*>(module)->train(on != 0);
    return 0;
  } catch (const std::exception& e) {
    remember(e);
    return -1;
  }
}

// module.forward(x), which must return a tensor.
at::Tensor* byol_jit_forward(void* module, const at::Tensor* x) {
  try {
    std::vector<torch::jit::IValue> inputs{*x};
    auto out = static_cast<torch::jit::Module*>(module)->forward(inputs);
    if (!out.isTensor()) throw std::invalid_argument("the module's forward returned a " + out.tagKind() + ", not a tensor");
    return new at::Tensor(out.toTensor());
  } catch (const std::exception& e) {
    remember(e);
    return nullptr;
  }
}

// Calls `f(data, name, tensor)` for each parameter (`buffers` 0) or buffer
// (1), recursively, with state_dict's dotted names; the tensors share the
// module's storage. The callback owns each new handle.
int byol_jit_named(void* module, int buffers, void* data, void (*f)(void*, const char*, at::Tensor*)) {
  try {
    auto* m = static_cast<torch::jit::Module*>(module);
    if (buffers) {
      for (const auto& b : m->named_buffers(true)) f(data, b.name.c_str(), new at::Tensor(b.value));
    } else {
      for (const auto& p : m->named_parameters(true)) f(data, p.name.c_str(), new at::Tensor(p.value));
    }
    return 0;
  } catch (const std::exception& e) {
    remember(e);
    return -1;
  }
}

}  // extern "C"
