// BatchNorm2d in training mode over BYOL's two views stacked along the batch,
// each view normalised by its own statistics, equal to ATen's per-view
// at::batch_norm calls bit for bit and without their cost:
//
// - ATen's statistics (batch_norm_cpu_collect_stats_contiguous_impl) sum each
//   channel in one float64 chain, value after value. That chain is bound by
//   the latency of an add: 4% of a step's CPU time at batch 32, 64x64. Here
//   eight channels' chains advance together: each still adds its own values
//   in ATen's order (batch, then position), so every sum is the same number,
//   but eight independent adds keep the core busy instead of one.
// - Both views are written into one output, so the layers around see one
//   tensor without a concatenation copy.
//
// The per-channel arithmetic that follows (mean, inverse std, running
// statistics, the affine terms and `x * alpha + beta`) is ATen's
// (batch_norm_cpu_update_stats_template, batch_norm_cpu_contiguous_impl),
// with its types and roundings. ATen's kernels are built per x86 vector
// extension with FMA on, and the compiler fuses `bias - mean * alpha` and
// `x * alpha + beta` into one rounding each; std::fma does the same here, so
// the fast path is taken only where ATen runs those builds (AVX2, AVX512).
// Backward is ATen's native_batch_norm_backward per view, written into one
// gradient, except for planes of fewer than 8 values (ResNet18's last stage
// at 64x64 and below): there ATen sums each plane through its vector
// reductions' partial-vector path, a loop of single-lane adds per plane that
// made one such call cost as much as one over 16 times the values (0.8 ms
// for [32, 512, 2, 2]). backward_small_planes does the same arithmetic
// directly. Anything else (other devices, dtypes, layouts or ranks, CPUs,
// autocast, tracing) runs at::batch_norm view by view.
#include <ATen/ATen.h>
#include <ATen/autocast_mode.h>
#include <torch/csrc/autograd/custom_function.h>
#include <torch/csrc/jit/frontend/tracer.h>

#include <algorithm>
#if defined(__x86_64__)
#include <immintrin.h>
#endif

#include <cmath>
#include <cstdint>

#include "shim.h"

namespace {

using torch::autograd::AutogradContext;
using torch::autograd::variable_list;

// `x` splits into `views` equal views (checked by byol_views_batch_norm).
bool fast(const at::Tensor& x, const at::Tensor& w, const at::Tensor& b, const at::Tensor& rm, const at::Tensor& rv, int64_t views) {
  const auto is_float_cpu = [](const at::Tensor& t) { return t.device().is_cpu() && t.scalar_type() == at::kFloat && t.is_contiguous(); };
  return aten_fma_kernels() && !torch::jit::tracer::isTracing() && !at::autocast::is_autocast_enabled(at::kCPU) && x.dim() == 4 &&
         is_float_cpu(x) && is_float_cpu(w) && is_float_cpu(b) && is_float_cpu(rm) && is_float_cpu(rv) && x.size(0) / views > 1 &&
         x.size(2) * x.size(3) > 1 && w.numel() == x.size(1) &&
         b.numel() == x.size(1) && rm.numel() == x.size(1) && rv.numel() == x.size(1);
}

// Channels whose float64 chains advance together, one per vector lane.
constexpr int64_t LANES = 8;

// The channels [c0, c0 + lanes) of `x` ([n, C, hw]) one by one, as ATen sums
// them: float64 sums of the float values in batch then position order; the
// mean rounded to float; deviations and squares in float.
void stats_one_by_one(const float* x, int64_t n, int64_t C, int64_t hw, int64_t c0, int64_t lanes, float* mean, float* var_sum) {
  const int64_t count = n * hw;
  for (int64_t c = c0; c < c0 + lanes; ++c) {
    double sum = 0;
    for (int64_t b = 0; b < n; ++b) {
      for (int64_t i = 0; i < hw; ++i) sum += x[(b * C + c) * hw + i];
    }
    const float m = static_cast<float>(sum / count);
    double sq = 0;
    for (int64_t b = 0; b < n; ++b) {
      for (int64_t i = 0; i < hw; ++i) {
        const float d = x[(b * C + c) * hw + i] - m;
        sq += d * d;
      }
    }
    mean[c] = m;
    var_sum[c] = static_cast<float>(sq);
  }
}

#if defined(__x86_64__)
// Positions i..i+7 of eight planes `hw` apart, transposed: column k holds
// position i + k of each plane, lane j plane j.
__attribute__((target("avx2,fma"))) inline void columns(const float* p, int64_t hw, __m256 v[8]) {
  const __m256 r0 = _mm256_loadu_ps(p), r1 = _mm256_loadu_ps(p + hw), r2 = _mm256_loadu_ps(p + 2 * hw), r3 = _mm256_loadu_ps(p + 3 * hw);
  const __m256 r4 = _mm256_loadu_ps(p + 4 * hw), r5 = _mm256_loadu_ps(p + 5 * hw), r6 = _mm256_loadu_ps(p + 6 * hw),
               r7 = _mm256_loadu_ps(p + 7 * hw);
  const __m256 t0 = _mm256_unpacklo_ps(r0, r1), t1 = _mm256_unpackhi_ps(r0, r1), t2 = _mm256_unpacklo_ps(r2, r3),
               t3 = _mm256_unpackhi_ps(r2, r3), t4 = _mm256_unpacklo_ps(r4, r5), t5 = _mm256_unpackhi_ps(r4, r5),
               t6 = _mm256_unpacklo_ps(r6, r7), t7 = _mm256_unpackhi_ps(r6, r7);
  const __m256 u0 = _mm256_shuffle_ps(t0, t2, 0x44), u1 = _mm256_shuffle_ps(t0, t2, 0xEE), u2 = _mm256_shuffle_ps(t1, t3, 0x44),
               u3 = _mm256_shuffle_ps(t1, t3, 0xEE), u4 = _mm256_shuffle_ps(t4, t6, 0x44), u5 = _mm256_shuffle_ps(t4, t6, 0xEE),
               u6 = _mm256_shuffle_ps(t5, t7, 0x44), u7 = _mm256_shuffle_ps(t5, t7, 0xEE);
  v[0] = _mm256_permute2f128_ps(u0, u4, 0x20);
  v[1] = _mm256_permute2f128_ps(u1, u5, 0x20);
  v[2] = _mm256_permute2f128_ps(u2, u6, 0x20);
  v[3] = _mm256_permute2f128_ps(u3, u7, 0x20);
  v[4] = _mm256_permute2f128_ps(u0, u4, 0x31);
  v[5] = _mm256_permute2f128_ps(u1, u5, 0x31);
  v[6] = _mm256_permute2f128_ps(u2, u6, 0x31);
  v[7] = _mm256_permute2f128_ps(u3, u7, 0x31);
}

// Position i of eight planes `hw` apart, lane j plane j.
__attribute__((target("avx2,fma"))) inline __m256 column(const float* p, int64_t hw) {
  return _mm256_set_ps(p[7 * hw], p[6 * hw], p[5 * hw], p[4 * hw], p[3 * hw], p[2 * hw], p[hw], p[0]);
}

// lo += float64 of lanes 0-3 of v, hi += lanes 4-7: one add per channel.
__attribute__((target("avx2,fma"))) inline void add_lanes(__m256d& lo, __m256d& hi, __m256 v) {
  lo = _mm256_add_pd(lo, _mm256_cvtps_pd(_mm256_castps256_ps128(v)));
  hi = _mm256_add_pd(hi, _mm256_cvtps_pd(_mm256_extractf128_ps(v, 1)));
}

// The same for the LANES channels from c0, one vector lane per channel: eight
// positions of the eight planes are loaded and transposed, and each lane then
// adds its channel's values in that channel's own order, so every sum is the
// one-by-one sum, with eight chains in flight instead of one.
__attribute__((target("avx2,fma"))) void stats_together(const float* x, int64_t n, int64_t C, int64_t hw, int64_t c0, float* mean,
                                                        float* var_sum) {
  const int64_t count = n * hw, whole = hw - hw % 8;
  __m256 v[8];
  __m256d s_lo = _mm256_setzero_pd(), s_hi = s_lo;
  for (int64_t b = 0; b < n; ++b) {
    const float* base = x + (b * C + c0) * hw;
    for (int64_t i = 0; i < whole; i += 8) {
      columns(base + i, hw, v);
      for (int k = 0; k < 8; ++k) add_lanes(s_lo, s_hi, v[k]);
    }
    for (int64_t i = whole; i < hw; ++i) add_lanes(s_lo, s_hi, column(base + i, hw));
  }
  const __m256d divisor = _mm256_set1_pd(static_cast<double>(count));
  const __m256 m = _mm256_set_m128(_mm256_cvtpd_ps(_mm256_div_pd(s_hi, divisor)), _mm256_cvtpd_ps(_mm256_div_pd(s_lo, divisor)));
  __m256d q_lo = _mm256_setzero_pd(), q_hi = q_lo;
  for (int64_t b = 0; b < n; ++b) {
    const float* base = x + (b * C + c0) * hw;
    for (int64_t i = 0; i < whole; i += 8) {
      columns(base + i, hw, v);
      for (int k = 0; k < 8; ++k) {
        const __m256 d = _mm256_sub_ps(v[k], m);
        add_lanes(q_lo, q_hi, _mm256_mul_ps(d, d));
      }
    }
    for (int64_t i = whole; i < hw; ++i) {
      const __m256 d = _mm256_sub_ps(column(base + i, hw), m);
      add_lanes(q_lo, q_hi, _mm256_mul_ps(d, d));
    }
  }
  _mm256_storeu_ps(mean + c0, m);
  _mm_storeu_ps(var_sum + c0, _mm256_cvtpd_ps(q_lo));
  _mm_storeu_ps(var_sum + c0 + 4, _mm256_cvtpd_ps(q_hi));
}

// out = x * alpha + beta with one rounding, as ATen's fused kernel computes it.
__attribute__((target("avx2,fma"))) void affine(const float* __restrict src, float* __restrict dst, int64_t size, float alpha, float beta) {
  const __m256 a = _mm256_set1_ps(alpha), s = _mm256_set1_ps(beta);
  int64_t i = 0;
  for (; i + 8 <= size; i += 8) _mm256_storeu_ps(dst + i, _mm256_fmadd_ps(_mm256_loadu_ps(src + i), a, s));
  for (; i < size; ++i) dst[i] = __builtin_fmaf(src[i], alpha, beta);
}
#else
// Unused off x86 (aten_fma_kernels() is false there); kept so that the file builds.
void stats_together(const float* x, int64_t n, int64_t C, int64_t hw, int64_t c0, float* mean, float* var_sum) {
  stats_one_by_one(x, n, C, hw, c0, LANES, mean, var_sum);
}
void affine(const float* src, float* dst, int64_t size, float alpha, float beta) {
  for (int64_t i = 0; i < size; ++i) dst[i] = std::fma(src[i], alpha, beta);
}
#endif

// One view: statistics, running statistics moved by them, and `out` =
// x * alpha + beta per channel. `save_mean` and `save_invstd` get what ATen
// saves for backward.
void normalise(const at::Tensor& x, const at::Tensor& w, const at::Tensor& b, const at::Tensor& rm, const at::Tensor& rv,
               double momentum, double eps, const at::Tensor& out, const at::Tensor& save_mean, const at::Tensor& save_invstd) {
  const int64_t n = x.size(0), C = x.size(1), hw = x.size(2) * x.size(3);
  const int64_t count = n * hw;
  const float* in = x.const_data_ptr<float>();
  float* mean = save_mean.data_ptr<float>();
  float* invstd = save_invstd.data_ptr<float>();
  std::vector<float> var_sum(C);
  // Channel groups of LANES, as many as there are threads to take them.
  parallel_chunks((C + LANES - 1) / LANES, 1, [&](int64_t begin, int64_t end) {
    for (int64_t group = begin; group < end; ++group) {
      const int64_t c0 = group * LANES, lanes = std::min(LANES, C - c0);
      if (lanes == LANES) {
        stats_together(in, n, C, hw, c0, mean, var_sum.data());
      } else {
        stats_one_by_one(in, n, C, hw, c0, lanes, mean, var_sum.data());
      }
    }
  });

  float* running_mean = rm.data_ptr<float>();
  float* running_var = rv.data_ptr<float>();
  const float* weight = w.const_data_ptr<float>();
  const float* bias = b.const_data_ptr<float>();
  const float keep = static_cast<float>(momentum);
  std::vector<float> alpha(C), beta(C);
  for (int64_t c = 0; c < C; ++c) {
    const double var = var_sum[c] / count;  // float / int64 -> float, as ATen divides
    invstd[c] = static_cast<float>(var != 0 || eps != 0 ? 1 / std::sqrt(var + eps) : 0.0);
    running_mean[c] = keep * mean[c] + (1 - keep) * running_mean[c];
    const double unbiased = var_sum[c] / (count - 1);
    running_var[c] = static_cast<float>(keep * unbiased + (1 - keep) * running_var[c]);
    alpha[c] = invstd[c] * weight[c];
    beta[c] = std::fma(-mean[c], alpha[c], bias[c]);
  }
  rm.unsafeGetTensorImpl()->bump_version();
  rv.unsafeGetTensorImpl()->bump_version();

  float* o = out.data_ptr<float>();
  parallel_chunks(n * C, 1, [&](int64_t begin, int64_t end) {
    for (int64_t plane = begin; plane < end; ++plane) {
      affine(in + plane * hw, o + plane * hw, hw, alpha[plane % C], beta[plane % C]);
    }
  });
}

// Planes below this many values take backward_small_planes. ATen's float
// vectors hold 8 (AVX2) or 16 (AVX512) lanes, and reduce_all over fewer values
// than a vector adds them one by one into lane 0, whichever the width.
constexpr int64_t SMALL_PLANE = 8;

// ATen's training-mode backward of one view (batch_norm_cpu_backward_contiguous_impl
// for float) where every plane holds fewer than SMALL_PLANE values: per
// channel, float sums of each plane's dy and of (x - mean) * dy added value
// by value, those added into float64 totals plane by plane in batch order;
// then dx = ((dy - grad_mean) - (x - mean) * k) * invstd * w, the inner
// multiply-subtract fused as ATen's FMA builds fuse it, and the weight's and
// bias's gradients from the totals. `dx`, `dw` or `db` may be null.
void backward_small_planes(const float* dy, const float* x, const float* weight, const float* mean, const float* invstd, int64_t n,
                           int64_t C, int64_t hw, float* dx, float* dw, float* db) {
  const int64_t count = n * hw;
  parallel_chunks(C, 16, [&](int64_t begin, int64_t end) {
    for (int64_t c = begin; c < end; ++c) {
      const float m = mean[c], is = invstd[c], w = weight[c];
      double sum = 0, dotp = 0;
      for (int64_t b = 0; b < n; ++b) {
        const float* g = dy + (b * C + c) * hw;
        const float* v = x + (b * C + c) * hw;
        float s = g[0], p = (v[0] - m) * g[0];
        for (int64_t j = 1; j < hw; ++j) {
          s += g[j];
          p += (v[j] - m) * g[j];
        }
        sum += s;
        dotp += p;
      }
      if (dx) {
        const float k = static_cast<float>(dotp) * is * is / static_cast<float>(count);
        const float grad_mean = static_cast<float>(sum / count);
        for (int64_t b = 0; b < n; ++b) {
          const int64_t at = (b * C + c) * hw;
          for (int64_t j = 0; j < hw; ++j) dx[at + j] = std::fma(-(x[at + j] - m), k, dy[at + j] - grad_mean) * is * w;
        }
      }
      if (dw) dw[c] = static_cast<float>(dotp * is);
      if (db) db[c] = static_cast<float>(sum);
    }
  });
}

// The views' outputs in one tensor, and each view's saved mean and inverse
// std, as rows of [views, C] tensors.
std::tuple<at::Tensor, at::Tensor, at::Tensor> forward_views(const at::Tensor& x, const at::Tensor& w, const at::Tensor& b,
                                                             const at::Tensor& rm, const at::Tensor& rv, double momentum, double eps,
                                                             int64_t views) {
  at::Tensor out = at::empty_like(x);
  at::Tensor means = at::empty({views, x.size(1)}, x.options());
  at::Tensor invstds = at::empty({views, x.size(1)}, x.options());
  const auto xs = x.chunk(views);
  const auto os = out.chunk(views);
  for (int64_t v = 0; v < views; ++v) normalise(xs[v], w, b, rm, rv, momentum, eps, os[v], means[v], invstds[v]);
  return {out, means, invstds};
}

struct ViewsBatchNorm : public torch::autograd::Function<ViewsBatchNorm> {
  static at::Tensor forward(AutogradContext* ctx, const at::Tensor& x, const at::Tensor& w, const at::Tensor& b, const at::Tensor& rm,
                            const at::Tensor& rv, double momentum, double eps, int64_t views) {
    auto [out, means, invstds] = forward_views(x, w, b, rm, rv, momentum, eps, views);
    ctx->save_for_backward({x, w, rm, rv, means, invstds});
    ctx->saved_data["eps"] = eps;
    ctx->saved_data["views"] = views;
    return out;
  }

  // Each view's gradients as ATen's kernel computes them, as autograd takes
  // them through the per-view calls: the input's side by side in one tensor,
  // the weight's and bias's added (two terms, so in either order the same sum).
  static variable_list backward(AutogradContext* ctx, variable_list grads) {
    auto saved = ctx->get_saved_variables();
    const at::Tensor &x = saved[0], &w = saved[1], &rm = saved[2], &rv = saved[3], &means = saved[4], &invstds = saved[5];
    const double eps = ctx->saved_data["eps"].toDouble();
    const int64_t views = ctx->saved_data["views"].toInt();
    const std::array<bool, 3> mask{ctx->needs_input_grad(0), ctx->needs_input_grad(1), ctx->needs_input_grad(2)};
    const auto gs = grads[0].chunk(views);
    const auto xs = x.chunk(views);
    const at::Tensor gx = mask[0] ? at::empty_like(x) : at::Tensor();
    const auto gxs = mask[0] ? gx.chunk(views) : std::vector<at::Tensor>(views);
    const int64_t C = x.size(1), hw = x.size(2) * x.size(3);
    at::Tensor gw, gb;
    for (int64_t v = 0; v < views; ++v) {
      at::Tensor gwv, gbv;
      // ATen's contiguous kernel needs dy contiguous too; otherwise it takes
      // another path, so does this.
      if (hw < SMALL_PLANE && gs[v].is_contiguous()) {
        gwv = mask[1] ? at::empty({C}, w.options()) : at::Tensor();
        gbv = mask[2] ? at::empty({C}, w.options()) : at::Tensor();
        backward_small_planes(gs[v].const_data_ptr<float>(), xs[v].const_data_ptr<float>(), w.const_data_ptr<float>(),
                              means[v].const_data_ptr<float>(), invstds[v].const_data_ptr<float>(), xs[v].size(0), C, hw,
                              mask[0] ? gxs[v].data_ptr<float>() : nullptr, mask[1] ? gwv.data_ptr<float>() : nullptr,
                              mask[2] ? gbv.data_ptr<float>() : nullptr);
      } else {
        at::Tensor gxv;
        std::tie(gxv, gwv, gbv) = at::native_batch_norm_backward(gs[v], xs[v], w, rm, rv, means[v], invstds[v], true, eps, mask);
        if (mask[0]) gxs[v].copy_(gxv);
      }
      if (gwv.defined()) gw = gw.defined() ? gw.add(gwv) : gwv;
      if (gbv.defined()) gb = gb.defined() ? gb.add(gbv) : gbv;
    }
    return {gx, gw, gb, at::Tensor(), at::Tensor(), at::Tensor(), at::Tensor(), at::Tensor()};
  }
};

}  // namespace

extern "C" {

// batch_norm(x, w, b, running_mean, running_var, training=True, momentum, eps)
// over `views` batches stacked in `x`, each by its own statistics and moving
// the running ones in turn (see above). Returns a new tensor, or null (see
// byol_last_error).
at::Tensor* byol_views_batch_norm(const at::Tensor* x, const at::Tensor* w, const at::Tensor* b, const at::Tensor* rm,
                                  const at::Tensor* rv, double momentum, double eps, int64_t views) {
  try {
    TORCH_CHECK(views >= 1 && x->dim() >= 1 && x->size(0) % views == 0, "batch_norm: a batch of ", x->dim() >= 1 ? x->size(0) : 0,
                " does not split into ", views, " equal views");
    if (!fast(*x, *w, *b, *rm, *rv, views)) {
      std::vector<at::Tensor> outs;
      for (const auto& v : x->chunk(views)) outs.push_back(at::batch_norm(v, *w, *b, *rm, *rv, true, momentum, eps, true));
      return new at::Tensor(at::cat(outs));
    }
    if (at::GradMode::is_enabled() && (x->requires_grad() || w->requires_grad() || b->requires_grad())) {
      return new at::Tensor(ViewsBatchNorm::apply(*x, *w, *b, *rm, *rv, momentum, eps, views));
    }
    at::NoGradGuard no_grad;
    return new at::Tensor(std::get<0>(forward_views(*x, *w, *b, *rm, *rv, momentum, eps, views)));
  } catch (const std::exception& e) {
    remember(e);
  }
  return nullptr;
}
}
