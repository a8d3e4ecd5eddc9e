/**
 * Copyright (c) 2017-present, Facebook, Inc.
 * All rights reserved.
 *
 * This source code is licensed under the BSD-style license found in the
 * LICENSE file in the root directory of this source tree.
 */

// Hand-written stand-in for the file gloo's CMake generates from
// gloo/config.h.in (gloo commit 3135b0b41b67dde590eef0938a0bf3d6238df5f7).
// Values are the ones the PyPI torch 2.11.0 Linux x86-64 CUDA wheel
// (2.11.0+cu130) was built with. Each one was worked out from
// pytorch/cmake/Dependencies.cmake and gloo's CMakeLists.txt, and then
// checked against the gloo symbols that libtorch_cpu.so and
// libtorch_cuda.so export. See ../README.md.

#pragma once

// gloo/CMakeLists.txt at this commit: set(GLOO_VERSION_MAJOR 0) MINOR 5 PATCH 0.
#define GLOO_VERSION_MAJOR 0
#define GLOO_VERSION_MINOR 5
#define GLOO_VERSION_PATCH 0

static_assert(
    GLOO_VERSION_MINOR < 100,
    "Programming error: you set a minor version that is too big.");
static_assert(
    GLOO_VERSION_PATCH < 100,
    "Programming error: you set a patch version that is too big.");

#define GLOO_VERSION                                         \
  (GLOO_VERSION_MAJOR * 10000 + GLOO_VERSION_MINOR * 100 +   \
   GLOO_VERSION_PATCH)

// 1: this is a CUDA wheel (USE_CUDA=ON), so libtorch_cuda.so contains
// gloo_cuda (it exports gloo::CudaAllreduceRingChunked<...> and similar).
// The gloo/cuda*.h headers are not vendored here, because no torch header
// includes them.
#define GLOO_USE_CUDA 1
// 0: PyTorch saves USE_NCCL/USE_RCCL, turns them OFF around
// add_subdirectory(third_party/gloo), and restores them afterwards
// ("we don't use Gloo+NCCL"). The wheel has no gloo::nccl symbols.
#define GLOO_USE_NCCL 0
// 0: a CUDA wheel, not a ROCm one (USE_ROCM=OFF).
#define GLOO_USE_ROCM 0
// 0: turned OFF like NCCL above, and there is no ROCm anyway.
#define GLOO_USE_RCCL 0
// 0: PyTorch never sets USE_REDIS, and gloo's default is OFF. The wheel has
// no gloo::rendezvous::RedisStore.
#define GLOO_USE_REDIS 0
// 0: USE_GLOO_IBVERBS defaults to OFF in PyTorch, so USE_IBVERBS stays at
// gloo's default of OFF. The wheel has no gloo::transport::ibverbs symbols.
#define GLOO_USE_IBVERBS 0
// 0: the manylinux wheel build has no MPI (USE_MPI goes OFF). The wheel has
// no gloo::mpi symbols.
#define GLOO_USE_MPI 0
// 0: PyTorch does not set USE_AVX for gloo. With 1, math.cc would define
// strong gloo::sum/product/max/min<gloo::float16>(void*, ...)
// specializations, and the wheel exports none of them (it does export the
// other strong gloo:: symbols).
#define GLOO_USE_AVX 0
// 0: on Linux, gloo's USE_LIBUV defaults to OFF (only MSVC forces it ON).
// The wheel has no gloo::transport::uv symbols.
#define GLOO_USE_LIBUV 0

// 1: gloo/CMakeLists.txt sets this on Linux (the TCP transport uses epoll).
// The wheel exports gloo::transport::tcp::Device.
#define GLOO_HAVE_TRANSPORT_TCP 1
// 1: wheel builds set USE_GLOO_WITH_OPENSSL=ON, which selects
// USE_TCP_OPENSSL_LOAD (OpenSSL is dlopen'ed at run time). The wheel exports
// gloo::transport::tcp::tls symbols and holds the string "libssl.so.1.1",
// but has no NEEDED entry for libssl.
#define GLOO_HAVE_TRANSPORT_TCP_TLS 1
// 0: follows USE_IBVERBS (OFF).
#define GLOO_HAVE_TRANSPORT_IBVERBS 0
// 0: follows USE_LIBUV (OFF).
#define GLOO_HAVE_TRANSPORT_UV 0

// 1: PyTorch's Dependencies.cmake runs set(GLOO_USE_TORCH_DTYPES 1) ("Build
// BFloat16 cuda kernels"). The wheel exports
// gloo::Cuda*<c10::BFloat16, ...>. Only gloo/cuda_private.h reads this macro.
#define GLOO_USE_TORCH_DTYPES 1
