// The one libtorch the shim is written against. Its C++ classes (c10d's
// process groups above all) change layout between releases, so a build
// against another version must stop here rather than run.
#pragma once
#include <torch/headeronly/version.h>

#if TORCH_VERSION_MAJOR != 2 || TORCH_VERSION_MINOR != 11
#error "byol-torch's shim is written for libtorch 2.11 (PyTorch 2.11.0); these headers are another version"
#endif
