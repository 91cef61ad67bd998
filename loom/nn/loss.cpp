// Elementwise losses. Most are composites of differentiable ops; binary_cross_entropy records its own
// backward because the composite's gradient is NaN where the clamped log saturates (x exactly 0 or 1, which
// a saturated f32 sigmoid produces), while PyTorch's formula stays finite there.
#include "loom/nn/loss.h"

#include <cmath>

#include "loom/autograd/function.h"
#include "loom/autograd/grad_mode.h"
#include "loom/ops/creation.h"
#include "loom/ops/elementwise.h"
#include "loom/ops/reduce.h"

namespace loom {

using G = std::vector<Tensor>;

namespace detail {

const char* reduction_name(Reduction r) {
  switch (r) {
    case Reduction::None: return "none";
    case Reduction::Mean: return "mean";
    case Reduction::Sum: return "sum";
    case Reduction::BatchMean: return "batchmean";
  }
  return "?";
}

Tensor reduce_loss(const Tensor& loss, Reduction r, const char* op) {
  switch (r) {
    case Reduction::None: return loss;
    case Reduction::Mean: return mean(loss);
    case Reduction::Sum: return sum(loss);
    case Reduction::BatchMean: break;
  }
  LOOM_FAIL(op, ": reduction 'batchmean' is only valid for kl_div; use Mean, Sum or None");
}

}  // namespace detail

namespace {

// Regression-style losses compare like with like: a broadcast here is almost always an (N, 1) vs (N) bug.
void check_pair(const char* op, const Tensor& input, const Tensor& target) {
  LOOM_CHECK(input.defined() && target.defined(), op, ": input and target must be defined tensors");
  LOOM_CHECK(is_floating(input.dtype()), op, ": input must be a floating point tensor, got ", input.dtype());
  LOOM_CHECK(target.dtype() == input.dtype(), op, ": target must have the input's dtype ", input.dtype(), ", got ",
             target.dtype());
  LOOM_CHECK(target.shape() == input.shape(), op, ": target of shape ", target.shape(),
             " does not match input of shape ", input.shape());
}

// An optional weight must broadcast to the input's shape without growing it.
void check_weight(const char* op, const char* what, const Tensor& w, const Tensor& input) {
  if (!w.defined()) return;
  LOOM_CHECK(w.dtype() == input.dtype(), op, ": ", what, " must have the input's dtype ", input.dtype(), ", got ",
             w.dtype());
  bool fits = w.dim() <= input.dim();
  for (int64_t i = 1; fits && i <= w.dim(); ++i) {
    const int64_t ws = w.size(w.dim() - i);
    fits = ws == 1 || ws == input.size(input.dim() - i);
  }
  LOOM_CHECK(fits, op, ": ", what, " of shape ", w.shape(), " does not broadcast to the input's shape ", input.shape());
}

}  // namespace

Tensor mse_loss(const Tensor& input, const Tensor& target, const ReductionOptions& o) {
  check_pair("mse_loss", input, target);
  Tensor d = input - target;
  return detail::reduce_loss(d * d, o.reduction, "mse_loss");
}

Tensor l1_loss(const Tensor& input, const Tensor& target, const ReductionOptions& o) {
  check_pair("l1_loss", input, target);
  return detail::reduce_loss(abs(input - target), o.reduction, "l1_loss");
}

Tensor smooth_l1_loss(const Tensor& input, const Tensor& target, const SmoothL1Options& o) {
  check_pair("smooth_l1_loss", input, target);
  LOOM_CHECK(o.beta >= 0, "smooth_l1_loss: beta must be >= 0, got ", o.beta);
  Tensor d = input - target;
  Tensor ad = abs(d);
  if (o.beta == 0) return detail::reduce_loss(ad, o.reduction, "smooth_l1_loss");
  Tensor l = where(ad < o.beta, d * d * (0.5 / o.beta), ad - 0.5 * o.beta);
  return detail::reduce_loss(l, o.reduction, "smooth_l1_loss");
}

Tensor huber_loss(const Tensor& input, const Tensor& target, const HuberOptions& o) {
  check_pair("huber_loss", input, target);
  LOOM_CHECK(o.delta > 0, "huber_loss: delta must be > 0, got ", o.delta);
  Tensor d = input - target;
  Tensor ad = abs(d);
  Tensor l = where(ad < o.delta, d * d * 0.5, (ad - 0.5 * o.delta) * o.delta);
  return detail::reduce_loss(l, o.reduction, "huber_loss");
}

Tensor binary_cross_entropy(const Tensor& input, const Tensor& target, const BCEOptions& o) {
  const char* op = "binary_cross_entropy";
  check_pair(op, input, target);
  check_weight(op, "weight", o.weight, input);
  Tensor loss;
  {
    NoGradGuard ng;
    Tensor x = input.detach(), y = target.detach();
    if (x.numel() > 0)
      LOOM_CHECK(amin(x).item() >= 0 && amax(x).item() <= 1, op,
                 ": all elements of input should be between 0 and 1 (apply sigmoid, or use "
                 "binary_cross_entropy_with_logits)");
    // -(y log x + (1 - y) log(1 - x)) with both logs clamped to >= -100, as PyTorch does.
    loss = (y - 1.0) * clamp(log1p(-x), -100.0, std::nullopt) - y * clamp(log(x), -100.0, std::nullopt);
    if (o.weight.defined()) loss = loss * o.weight.detach();
  }
  if (autograd::needs_grad({input, target})) {
    Tensor w = o.weight.defined() ? o.weight.detach() : Tensor();
    autograd::record("BinaryCrossEntropy", {loss}, {input, target},
                     [sx = autograd::save(input, op), sy = autograd::save(target, op), w](const G& g) {
                       const Tensor &x = sx.get(), &y = sy.get();
                       // d/dx = (x - y) / (x (1 - x)), the denominator kept >= 1e-12 as in PyTorch.
                       Tensor gx = g[0] * (x - y) / clamp(x * (1.0 - x), 1e-12, std::nullopt);
                       Tensor gy = g[0] * (log1p(-x) - log(x));
                       if (w.defined()) gx = gx * w, gy = gy * w;
                       return G{gx, gy};
                     });
  }
  return detail::reduce_loss(loss, o.reduction, op);
}

Tensor binary_cross_entropy_with_logits(const Tensor& input, const Tensor& target, const BCEWithLogitsOptions& o) {
  const char* op = "binary_cross_entropy_with_logits";
  check_pair(op, input, target);
  check_weight(op, "weight", o.weight, input);
  check_weight(op, "pos_weight", o.pos_weight, input);
  // softplus(-x) = log(1 + e^-x) switches to its linear form for x < -20, so no exp overflows; its gradient
  // is exact at x = 0 (unlike a max(-x, 0) + log1p(e^-|x|) composite, whose kinks give 0 there).
  Tensor sp = softplus(-input);
  Tensor loss = o.pos_weight.defined() ? (1.0 - target) * input + ((o.pos_weight - 1.0) * target + 1.0) * sp
                                       : (1.0 - target) * input + sp;
  if (o.weight.defined()) loss = loss * o.weight;
  return detail::reduce_loss(loss, o.reduction, op);
}

Tensor kl_div(const Tensor& input, const Tensor& target, const KLDivOptions& o) {
  check_pair("kl_div", input, target);
  Tensor loss;
  if (o.log_target) {
    loss = exp(target) * (target - input);
  } else {
    // target * log(target) with 0 log 0 = 0; the where keeps log away from 0 so no NaN reaches the gradient.
    Tensor safe = where(target > 0.0, target, 1.0);
    loss = target * log(safe) - target * input;
  }
  if (o.reduction == Reduction::BatchMean) {
    Tensor s = sum(loss);
    return input.dim() == 0 ? s : s / double(input.size(0));
  }
  return detail::reduce_loss(loss, o.reduction, "kl_div");
}

}  // namespace loom
