// Convolution and linear layers over several views stacked along the batch
// dimension (BYOL's two augmented views), with the gradient of the weight
// summed view by view.
//
// lightly runs each view through the network by itself; autograd then adds
// the weight gradients of the separate calls. One call over the stacked views
// gives the same outputs and input gradients bit for bit (each sample is
// computed by itself), but its weight gradient is one reduction over both
// views, rounded differently, and BYOL's dynamics amplify that rounding to
// 1e-4 within five steps. These functions keep the single forward and input
// gradient, and reduce the weight gradient per view as the separate calls do,
// so that training stays bit-identical to lightly's four forwards.
//
// Under autocast, without autograd or without views they are the plain op:
// their forward is the same, and there is no weight gradient to keep exact.
#include <ATen/ATen.h>
#include <ATen/autocast_mode.h>
#include <torch/csrc/autograd/custom_function.h>
#include <vector>
#include "shim.h"

namespace {
using torch::autograd::AutogradContext;
using torch::autograd::variable_list;

bool plain(const at::Tensor& x, const at::Tensor& w, int64_t views) {
  return views <= 1 || !at::GradMode::is_enabled() || !(x.requires_grad() || w.requires_grad()) ||
         at::autocast::is_autocast_enabled(x.device().type()) || x.size(0) % views != 0;
}

// a + b for each view's term, in the order of the views.
at::Tensor sum_views(const std::vector<at::Tensor>& terms) {
  at::Tensor total = terms[0];
  for (size_t i = 1; i < terms.size(); i++) total = total.add(terms[i]);
  return total;
}

struct ViewsConv2d : public torch::autograd::Function<ViewsConv2d> {
  static at::Tensor forward(AutogradContext* ctx, const at::Tensor& x, const at::Tensor& w, int64_t stride, int64_t padding,
                            int64_t views) {
    ctx->save_for_backward({x, w});
    ctx->saved_data["stride"] = stride;
    ctx->saved_data["padding"] = padding;
    ctx->saved_data["views"] = views;
    return at::conv2d(x, w, {}, {stride, stride}, {padding, padding}, {1, 1}, 1);
  }

  static variable_list backward(AutogradContext* ctx, variable_list grads) {
    auto saved = ctx->get_saved_variables();
    const at::Tensor& x = saved[0];
    const at::Tensor& w = saved[1];
    const at::Tensor& g = grads[0];
    const int64_t s = ctx->saved_data["stride"].toInt();
    const int64_t p = ctx->saved_data["padding"].toInt();
    const int64_t views = ctx->saved_data["views"].toInt();
    const std::vector<int64_t> stride{s, s}, padding{p, p}, dilation{1, 1}, output_padding{0, 0};
    at::Tensor gx, gw;
    if (ctx->needs_input_grad(0)) {
      gx = std::get<0>(at::convolution_backward(g, x, w, std::nullopt, stride, padding, dilation, false, output_padding, 1,
                                                {true, false, false}));
    }
    if (ctx->needs_input_grad(1)) {
      auto gs = g.chunk(views);
      auto xs = x.chunk(views);
      std::vector<at::Tensor> terms;
      for (int64_t v = 0; v < views; v++) {
        terms.push_back(std::get<1>(at::convolution_backward(gs[v], xs[v], w, std::nullopt, stride, padding, dilation, false,
                                                             output_padding, 1, {false, true, false})));
      }
      gw = sum_views(terms);
    }
    return {gx, gw, at::Tensor(), at::Tensor(), at::Tensor()};
  }
};

// Mirrors the gradients autograd takes through at::linear (addmm with a bias,
// mm without): x' = g.mm(w), w' = g'.mm(x) per view, b' = g.sum(0) per view.
// Autograd's custom functions take no undefined tensor, hence two of them.
variable_list linear_backward(AutogradContext* ctx, const at::Tensor& g, bool bias) {
  auto saved = ctx->get_saved_variables();
  const at::Tensor& x = saved[0];
  const at::Tensor& w = saved[1];
  const int64_t views = ctx->saved_data["views"].toInt();
  at::Tensor gx, gw, gb;
  if (ctx->needs_input_grad(0)) gx = g.mm(w);
  auto gs = g.chunk(views);
  if (ctx->needs_input_grad(1)) {
    auto xs = x.chunk(views);
    std::vector<at::Tensor> terms;
    for (int64_t v = 0; v < views; v++) terms.push_back(gs[v].t().mm(xs[v]));
    gw = sum_views(terms);
  }
  if (bias && ctx->needs_input_grad(2)) {
    std::vector<at::Tensor> terms;
    for (int64_t v = 0; v < views; v++) terms.push_back(gs[v].sum(0));
    gb = sum_views(terms);
  }
  if (bias) return {gx, gw, gb, at::Tensor()};
  return {gx, gw, at::Tensor()};
}

struct ViewsLinear : public torch::autograd::Function<ViewsLinear> {
  static at::Tensor forward(AutogradContext* ctx, const at::Tensor& x, const at::Tensor& w, const at::Tensor& b, int64_t views) {
    ctx->save_for_backward({x, w});
    ctx->saved_data["views"] = views;
    return at::linear(x, w, b);
  }
  static variable_list backward(AutogradContext* ctx, variable_list grads) { return linear_backward(ctx, grads[0], true); }
};

struct ViewsLinearNoBias : public torch::autograd::Function<ViewsLinearNoBias> {
  static at::Tensor forward(AutogradContext* ctx, const at::Tensor& x, const at::Tensor& w, int64_t views) {
    ctx->save_for_backward({x, w});
    ctx->saved_data["views"] = views;
    return at::linear(x, w);
  }
  static variable_list backward(AutogradContext* ctx, variable_list grads) { return linear_backward(ctx, grads[0], false); }
};
}  // namespace

extern "C" {

// conv2d(x, w, stride, padding) over `views` stacked views (see above).
// Returns a new tensor, or null (see byol_last_error).
at::Tensor* byol_views_conv2d(const at::Tensor* x, const at::Tensor* w, int64_t stride, int64_t padding, int64_t views) {
  try {
    if (plain(*x, *w, views)) return new at::Tensor(at::conv2d(*x, *w, {}, {stride, stride}, {padding, padding}, {1, 1}, 1));
    return new at::Tensor(ViewsConv2d::apply(*x, *w, stride, padding, views));
  } catch (const std::exception& e) {
    remember(e);
  }
  return nullptr;
}

// linear(x, w, b) over `views` stacked views (see above); `b` may be null.
// Returns a new tensor, or null (see byol_last_error).
at::Tensor* byol_views_linear(const at::Tensor* x, const at::Tensor* w, const at::Tensor* b, int64_t views) {
  try {
    const at::Tensor bias = b ? *b : at::Tensor();
    if (plain(*x, *w, views) || x->dim() != 2) {
      return new at::Tensor(at::linear(*x, *w, bias.defined() ? std::optional<at::Tensor>(bias) : std::nullopt));
    }
    if (bias.defined()) return new at::Tensor(ViewsLinear::apply(*x, *w, bias, views));
    return new at::Tensor(ViewsLinearNoBias::apply(*x, *w, views));
  } catch (const std::exception& e) {
    remember(e);
  }
  return nullptr;
}
}
