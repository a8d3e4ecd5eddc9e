// ResNet's stem max-pool (3x3, stride 2, padding 1) on contiguous float32 CPU
// batches, equal to ATen's bit for bit and several times faster. ATen's NCHW
// kernel scans each window with an int64 index per output, one output at a
// time; it was a tenth of a BYOL step at batch 32, 64x64. Here the nine taps
// of each output row are first copied out of its three input rows (the
// stride-2 columns apart, so that tap t of every window is contiguous), and
// then all the row's windows are computed at once in vector lanes (AVX-512 or
// AVX2 where the CPU has it; 4x a first version that left the strided loads
// to the compiler, which did not vectorise them), in the same (kh, kw) scan order with the same update rule
// (`v > max || isnan(v)`), so the chosen position, and therefore where
// backward sends each gradient, is ATen's; the window offset of the maximum
// (0..8) is kept as one byte per output. Backward adds each output's gradient
// into its input position plane by plane in output order, as ATen's does, so
// sums where windows overlap round the same way. Anything else (other
// layouts, dtypes, devices, kernel shapes) goes to at::max_pool2d.
#include <ATen/ATen.h>
#include <torch/csrc/autograd/custom_function.h>
#include <torch/csrc/jit/frontend/tracer.h>

#include <algorithm>
#include <limits>
#include <vector>

#include "shim.h"

namespace {

using torch::autograd::AutogradContext;
using torch::autograd::variable_list;

constexpr int64_t K = 3, S = 2, P = 1;

int64_t out_size(int64_t n) { return (n + 2 * P - K) / S + 1; }

// (Not while tracing: the tracer records ATen operators, and this kernel is
// none, so an exported module must get ATen's max_pool2d.)
bool fast(const at::Tensor& x, int64_t k, int64_t s, int64_t p) {
  return !torch::jit::tracer::isTracing() && k == K && s == S && p == P && x.device().is_cpu() && x.scalar_type() == at::kFloat && x.dim() == 4 &&
         x.is_contiguous() && x.size(2) >= 2 && x.size(3) >= 2;
}

// One output row from its three input rows, each split into the values at
// columns 2*ow-1, 2*ow and 2*ow+1 (`taps`, tap t = kh*3+kw at t*OW), with
// -inf where the column or the row lies outside the input, which
// `v > best` never takes. Each window is scanned in ATen's (kh, kw) order
// from ATen's start (-inf, at the window's first valid position `first`),
// with ATen's update rule, so ties and NaNs pick ATen's position. No output
// depends on another: the loop runs across columns in vector lanes.
#if defined(__x86_64__)
__attribute__((target_clones("avx512f", "avx2", "default")))
#endif
void row_windows(const float* __restrict taps, int64_t OW, const uint8_t* __restrict first, float* __restrict o, uint8_t* __restrict a) {
  for (int64_t ow = 0; ow < OW; ++ow) {
    float best = -std::numeric_limits<float>::infinity();
    int32_t k = first[ow];
    for (int32_t t = 0; t < K * K; ++t) {
      const float v = taps[t * OW + ow];
      const bool take = v > best || v != v;
      best = take ? v : best;
      k = take ? t : k;
    }
    o[ow] = best;
    a[ow] = static_cast<uint8_t>(k);
  }
}

// One plane: `in` [H, W] -> `out` [OH, OW], `arg` the window offset kh*3+kw;
// `taps` has room for 9*OW floats and `first` for OW bytes.
void pool_plane(const float* in, int64_t H, int64_t W, float* out, uint8_t* arg, int64_t OH, int64_t OW, float* taps, uint8_t* first) {
  constexpr float lowest = -std::numeric_limits<float>::infinity();
  for (int64_t oh = 0; oh < OH; ++oh) {
    const int64_t ih0 = oh * S - P;
    // Only the top row of windows starts outside (at row -1), and H >= 2
    // keeps its kh = 1 inside; only the first column starts at column -1.
    const int64_t kh0 = ih0 < 0 ? 1 : 0;
    for (int64_t ow = 0; ow < OW; ++ow) first[ow] = static_cast<uint8_t>(kh0 * K + (ow == 0 ? 1 : 0));
    for (int64_t kh = 0; kh < K; ++kh) {
      const int64_t ih = ih0 + kh;
      float* t = taps + kh * K * OW;
      if (ih < 0 || ih >= H) {
        std::fill(t, t + K * OW, lowest);
        continue;
      }
      const float* r = in + ih * W;
      for (int64_t ow = 0; ow < OW; ++ow) {
        const int64_t c = ow * S - P;
        t[ow] = c >= 0 ? r[c] : lowest;
        t[OW + ow] = r[c + 1];
        t[2 * OW + ow] = c + 2 < W ? r[c + 2] : lowest;
      }
    }
    row_windows(taps, OW, first, out + oh * OW, arg + oh * OW);
  }
}

std::pair<at::Tensor, at::Tensor> pool(const at::Tensor& x) {
  const int64_t N = x.size(0), C = x.size(1), H = x.size(2), W = x.size(3);
  const int64_t OH = out_size(H), OW = out_size(W);
  at::Tensor y = at::empty({N, C, OH, OW}, x.options());
  at::Tensor arg = at::empty({N, C, OH, OW}, x.options().dtype(at::kByte));
  const float* in = x.const_data_ptr<float>();
  float* out = y.data_ptr<float>();
  uint8_t* a = arg.data_ptr<uint8_t>();
  parallel_chunks(N * C, 16, [&](int64_t begin, int64_t end) {
    std::vector<float> taps(K * K * OW);
    std::vector<uint8_t> first(OW);
    for (int64_t plane = begin; plane < end; ++plane) {
      pool_plane(in + plane * H * W, H, W, out + plane * OH * OW, a + plane * OH * OW, OH, OW, taps.data(), first.data());
    }
  });
  return {y, arg};
}

at::Tensor unpool(const at::Tensor& grad_out, const at::Tensor& arg, int64_t H, int64_t W) {
  const at::Tensor g = grad_out.contiguous();
  const int64_t N = g.size(0), C = g.size(1), OH = g.size(2), OW = g.size(3);
  at::Tensor gx = at::zeros({N, C, H, W}, g.options());
  const float* go = g.const_data_ptr<float>();
  const uint8_t* a = arg.const_data_ptr<uint8_t>();
  float* gi = gx.data_ptr<float>();
  parallel_chunks(N * C, 16, [&](int64_t begin, int64_t end) {
    for (int64_t plane = begin; plane < end; ++plane) {
      const float* gp = go + plane * OH * OW;
      const uint8_t* ap = a + plane * OH * OW;
      float* ip = gi + plane * H * W;
      for (int64_t oh = 0; oh < OH; ++oh) {
        for (int64_t ow = 0; ow < OW; ++ow) {
          const int64_t k = ap[oh * OW + ow];
          const int64_t ih = oh * S - P + k / K, iw = ow * S - P + k % K;
          ip[ih * W + iw] += gp[oh * OW + ow];
        }
      }
    }
  });
  return gx;
}

struct StemMaxPool : public torch::autograd::Function<StemMaxPool> {
  static at::Tensor forward(AutogradContext* ctx, const at::Tensor& x) {
    auto [y, arg] = pool(x);
    ctx->save_for_backward({arg});
    ctx->saved_data["h"] = x.size(2);
    ctx->saved_data["w"] = x.size(3);
    return y;
  }
  static variable_list backward(AutogradContext* ctx, variable_list grads) {
    auto saved = ctx->get_saved_variables();
    return {unpool(grads[0], saved[0], ctx->saved_data["h"].toInt(), ctx->saved_data["w"].toInt())};
  }
};

}  // namespace

extern "C" {

// max_pool2d(x, k, s, p) (dilation 1, floor mode); a new tensor or null.
at::Tensor* byol_max_pool2d(const at::Tensor* x, int64_t k, int64_t s, int64_t p) {
  try {
    if (!fast(*x, k, s, p)) return new at::Tensor(at::max_pool2d(*x, {k, k}, {s, s}, {p, p}, {1, 1}, false));
    if (at::GradMode::is_enabled() && x->requires_grad()) return new at::Tensor(StemMaxPool::apply(*x));
    return new at::Tensor(pool(*x).first);
  } catch (const std::exception& e) {
    remember(e);
  }
  return nullptr;
}
}
