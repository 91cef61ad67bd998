// Gradient clipping. Norms accumulate in double over the raw gradient elements, so a float32 model's total
// norm does not lose digits over millions of elements; the scaling itself is one in-place multiply.
#include "loom/optim/clip.h"

#include <cmath>

#include "loom/autograd/grad_mode.h"
#include "loom/core/dispatch.h"

namespace loom::optim {

namespace {

// sum |g|^p over g's elements (p = inf: the largest |g|).
double grad_power_sum(const Tensor& grad, double p) {
  Tensor g = grad.is_contiguous() ? grad : grad.contiguous();
  return dispatch_float(g.dtype(), "clip_grad_norm_", [&]<class T>() {
    const T* d = g.data<T>();
    double acc = 0;
    const int64_t n = g.numel();
    if (std::isinf(p)) {
      for (int64_t i = 0; i < n; ++i) {
        const double a = std::abs(double(d[i]));
        if (std::isnan(a)) return a;  // std::max would drop it, and a NaN gradient must not pass as finite
        acc = std::max(acc, a);
      }
    } else if (p == 2.0) {
      for (int64_t i = 0; i < n; ++i) acc += double(d[i]) * double(d[i]);
    } else if (p == 1.0) {
      for (int64_t i = 0; i < n; ++i) acc += std::abs(double(d[i]));
    } else {
      for (int64_t i = 0; i < n; ++i) acc += std::pow(std::abs(double(d[i])), p);
    }
    return acc;
  });
}

}  // namespace

double clip_grad_norm_(const std::vector<Tensor>& params, double max_norm, double norm_type, bool error_if_nonfinite) {
  LOOM_CHECK(norm_type > 0, "clip_grad_norm_: norm_type must be positive or infinity, got ", norm_type);
  NoGradGuard ng;
  std::vector<Tensor> grads;
  for (const Tensor& p : params)
    if (p.defined() && p.grad().defined()) grads.push_back(p.grad());
  if (grads.empty()) return 0.0;
  const bool inf = std::isinf(norm_type);
  double total = 0;
  for (const Tensor& g : grads) {
    const double s = grad_power_sum(g, norm_type);
    total = inf ? (std::isnan(s) || std::isnan(total) ? double(NAN) : std::max(total, s)) : total + s;
  }
  if (!inf) total = norm_type == 2.0 ? std::sqrt(total) : norm_type == 1.0 ? total : std::pow(total, 1.0 / norm_type);
  LOOM_CHECK(!error_if_nonfinite || std::isfinite(total), "clip_grad_norm_: the total norm of order ", norm_type,
             " of the gradients is non-finite (", total, "), so it cannot be clipped; pass error_if_nonfinite = false "
             "to clip anyway");
  const double coef = max_norm / (total + 1e-6);
  // PyTorch multiplies by min(coef, 1) unconditionally; a factor of 1 changes nothing, so it is skipped.
  if (coef < 1.0 || std::isnan(coef))
    for (Tensor& g : grads) g.mul_(coef);
  return total;
}

void clip_grad_value_(const std::vector<Tensor>& params, double clip_value) {
  LOOM_CHECK(clip_value >= 0, "clip_grad_value_: clip_value must be >= 0, got ", clip_value);
  NoGradGuard ng;
  for (const Tensor& p : params) {
    if (!p.defined() || !p.grad().defined()) continue;
    Tensor g = p.grad();
    g.clamp_(-clip_value, clip_value);
  }
}

}  // namespace loom::optim
