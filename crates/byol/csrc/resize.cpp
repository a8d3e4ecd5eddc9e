// RandomResizedCrop's crop-and-resize of uint8 images, equal bit for bit to
// converting each crop to float in [0, 1] and resizing it with ATen's
// bilinear antialiased interpolation (what torchvision's resized_crop does to
// a float tensor), and about three times faster. ATen's kernel
// (cpu_upsample_generic_aa) walks index and weight tensors element by element
// through a TensorIterator; the two passes took a third of a BYOL batch's
// augmentation, and converting each crop to float before them a tenth more.
//
// What stays ATen's own: the weights. They depend only on the input and
// output lengths, and are read once per pair of lengths from ATen itself, by
// resizing the rows of an identity matrix (each output of a one-hot row is
// exactly that tap's weight: 1 * w, every other term 0 * w). Each output's
// span of taps, zero-weight ones included, is ATen's formula
// (_compute_indices_min_size_weights_aa with float scale, centre and support).
// What is redone here is ATen's arithmetic around them: the separable passes
// in ATen's order (along the width into a float buffer, then along the
// height), each output a chain over its taps in order. That chain, `output =
// t0 * w0; output += t * w` in ATen's source, is compiled in ATen's AVX2 and
// AVX512 builds to a loop whose body takes four taps at a time, multiplying
// them as a vector and adding the products one by one, and whose remainder (the
// last (n - 1) % 4 taps) fuses each multiply-add; found by matching every
// output of ATen's own resizes (crates/byol/tests/core.rs). Hence the fast
// path only where ATen runs those builds.
// Everything else (other dtypes, layouts, devices, CPUs, autocast, tracing)
// takes ATen's ops crop by crop.
#include <ATen/ATen.h>
#include <ATen/autocast_mode.h>
#include <ATen/core/grad_mode.h>
#include <torch/csrc/jit/frontend/tracer.h>

#include <algorithm>
#include <cmath>
#include <map>
#include <memory>
#include <mutex>
#include <utility>
#include <vector>

#include "shim.h"

namespace {

// One output's taps of a 1-d resize from `in` to `out` values: the input
// positions [first, first + count) and their weights.
struct Taps {
  std::vector<int64_t> first, count;
  std::vector<float> weights;  // [out, width]
  int64_t width = 0;
};

// ATen's taps for resizing `in` values to `out` (see above).
Taps read_taps(int64_t in, int64_t out) {
  at::NoGradGuard no_grad;
  // The identity's rows a block at a time, so that a long side costs
  // block * in floats at once, not in * in.
  constexpr int64_t block = 256;
  std::vector<float> table(in * out);  // [in (tap position), out]
  for (int64_t c0 = 0; c0 < in; c0 += block) {
    const int64_t rows = std::min(block, in - c0);
    at::Tensor hot = at::zeros({rows, in}, at::TensorOptions().dtype(at::kFloat));
    hot.diagonal(c0, 0, 1).fill_(1.0);
    const at::Tensor w =
        at::_upsample_bilinear2d_aa(hot.view({1, rows, 1, in}), {1, out}, false, std::nullopt, std::nullopt).contiguous();
    std::copy_n(w.const_data_ptr<float>(), rows * out, table.data() + c0 * out);
  }
  const float* p = table.data();
  // ATen's float arithmetic for the span: scale = (float)in / out, the
  // bilinear support 1 widened by the scale, the centre rounded to float.
  const float scale = static_cast<float>(in) / static_cast<float>(out);
  const float support = scale >= 1.0 ? static_cast<float>(1.0 * scale) : 1.0f;
  const int64_t most = static_cast<int64_t>(std::ceil(support)) * 2 + 1;
  Taps t;
  t.first.resize(out);
  t.count.resize(out);
  t.width = most;
  t.weights.assign(out * most, 0.0f);
  for (int64_t i = 0; i < out; ++i) {
    const float center = static_cast<float>(scale * (i + 0.5));
    const int64_t lo = std::max(static_cast<int64_t>((center - support) + 0.5), int64_t{0});
    const int64_t n = std::clamp(std::min(static_cast<int64_t>((center + support) + 0.5), in) - lo, int64_t{0}, most);
    t.first[i] = lo;
    t.count[i] = n;
    for (int64_t c = 0; c < in; ++c) {
      const float v = p[c * out + i];
      if (c >= lo && c < lo + n) {
        t.weights[i * most + c - lo] = v;
      } else if (v != 0) {
        TORCH_CHECK(false, "byol_crop_resize: ATen's weight ", v, " at ", c, " lies outside the span [", lo, ", ", lo + n, ") for ", in,
                    " -> ", out);
      }
    }
    TORCH_CHECK(n > 0, "byol_crop_resize: no taps for output ", i, " of ", in, " -> ", out);
  }
  return t;
}

// The taps for (in, out), read once per process.
const Taps& taps(int64_t in, int64_t out) {
  static std::mutex lock;
  static std::map<std::pair<int64_t, int64_t>, std::unique_ptr<Taps>> cache;
  std::lock_guard<std::mutex> guard(lock);
  auto& slot = cache[{in, out}];
  if (!slot) slot = std::make_unique<Taps>(read_taps(in, out));
  return *slot;
}

#if defined(__x86_64__)
#define BYOL_FMA_TARGET __attribute__((target("avx2,fma")))
#else
#define BYOL_FMA_TARGET
#endif

// dst[x] = ATen's chain over the n taps k of src[k * stride + x] * w[k], for
// every x in [0, len) at once: each x its own chain, in tap order (see above).
BYOL_FMA_TARGET void chains(const float* src, int64_t stride, const float* w, int64_t n, int64_t len, float* dst) {
  for (int64_t x = 0; x < len; ++x) dst[x] = src[x] * w[0];
  int64_t k = 1;
  for (; n - k >= 4; k += 4) {
    for (int64_t q = k; q < k + 4; ++q) {
      const float* t = src + q * stride;
      for (int64_t x = 0; x < len; ++x) dst[x] += t[x] * w[q];
    }
  }
  for (; k < n; ++k) {
    const float* t = src + k * stride;
    for (int64_t x = 0; x < len; ++x) dst[x] = std::fma(t[x], w[k], dst[x]);
  }
}

// One crop of one image ([C, H, W] uint8) into `out` ([C, size, size]). The
// pass along the width runs on the crop transposed (`cols`, [width, height])
// into `rows` ([size, height]), so that its chains too run across many rows
// at once; `rows` transposed (`tmp`, [height, size]) is the buffer ATen's
// second pass reads, along the height.
BYOL_FMA_TARGET void crop_resize_one(const uint8_t* img, int64_t C, int64_t H, int64_t W, int64_t top, int64_t left, int64_t height,
                                     int64_t width, int64_t size, const Taps& across, const Taps& down, float* out,
                                     std::vector<float>& cols, std::vector<float>& rows, std::vector<float>& tmp) {
  cols.resize(width * height);
  rows.resize(size * height);
  tmp.resize(height * size);
  for (int64_t c = 0; c < C; ++c) {
    for (int64_t y = 0; y < height; ++y) {
      const uint8_t* src = img + (c * H + top + y) * W + left;
      // The crop's float value, as uint8 -> float and then / 255 make it.
      for (int64_t x = 0; x < width; ++x) cols[x * height + y] = static_cast<float>(src[x]) / 255.0f;
    }
    for (int64_t i = 0; i < size; ++i) {
      chains(cols.data() + across.first[i] * height, height, across.weights.data() + i * across.width, across.count[i], height,
             rows.data() + i * height);
    }
    for (int64_t y = 0; y < height; ++y) {
      for (int64_t i = 0; i < size; ++i) tmp[y * size + i] = rows[i * height + y];
    }
    for (int64_t o = 0; o < size; ++o) {
      chains(tmp.data() + down.first[o] * size, size, down.weights.data() + o * down.width, down.count[o], size,
             out + (c * size + o) * size);
    }
  }
}

}  // namespace

extern "C" {

// Each image n of `x` ([N, C, H, W]) cropped to boxes[4n .. 4n+4) (top, left,
// height, width; inside the image, checked by the caller) and resized to
// size x size as described above: a new float [N, C, size, size] tensor, or
// null (see byol_last_error).
at::Tensor* byol_crop_resize(const at::Tensor* x, const int64_t* boxes, int64_t size) {
  try {
    const int64_t N = x->size(0), C = x->size(1), H = x->size(2), W = x->size(3);
    const auto kind = x->scalar_type() == at::kByte ? at::kFloat : x->scalar_type();
    at::Tensor out = at::empty({N, C, size, size}, x->options().dtype(kind));
    const bool fast = aten_fma_kernels() && !torch::jit::tracer::isTracing() && !at::autocast::is_autocast_enabled(at::kCPU) &&
                      x->device().is_cpu() && x->scalar_type() == at::kByte && x->is_contiguous();
    if (!fast) {
      for (int64_t n = 0; n < N; ++n) {
        const int64_t* b = boxes + 4 * n;
        at::Tensor crop = x->narrow(0, n, 1).narrow(2, b[0], b[2]).narrow(3, b[1], b[3]);
        if (crop.scalar_type() == at::kByte) crop = crop.to(at::kFloat).div(255.0);
        at::Tensor dst = out.narrow(0, n, 1);
        at::_upsample_bilinear2d_aa_out(dst, crop, {size, size}, false, std::nullopt, std::nullopt);
      }
      return new at::Tensor(out);
    }
    const uint8_t* in = x->const_data_ptr<uint8_t>();
    float* o = out.data_ptr<float>();
    std::vector<const Taps*> across(N), down(N);
    for (int64_t n = 0; n < N; ++n) {
      across[n] = &taps(boxes[4 * n + 3], size);
      down[n] = &taps(boxes[4 * n + 2], size);
    }
    parallel_chunks(N, 1, [&](int64_t begin, int64_t end) {
      std::vector<float> cols, rows, tmp;
      for (int64_t n = begin; n < end; ++n) {
        const int64_t* b = boxes + 4 * n;
        crop_resize_one(in + n * C * H * W, C, H, W, b[0], b[1], b[2], b[3], size, *across[n], *down[n], o + n * C * size * size, cols,
                        rows, tmp);
      }
    });
    return new at::Tensor(out);
  } catch (const std::exception& e) {
    remember(e);
  }
  return nullptr;
}
}
