// Cross-entropy and negative log-likelihood over classes.
//
// Cross-entropy with class indices is the classifier hot path, so it is one fused kernel behind
// Backend::cross_entropy_forward / _backward (loom/backend/cpu/cross_entropy.cpp): one pass per row for the loss
// and its log-sum-exp, and a backward straight from the saved log-sum-exp. nll_loss and probability targets are
// composites of differentiable ops (and serve as the reference the fused kernel is tested against).
#include <cmath>

#include "loom/autograd/function.h"
#include "loom/backend/backend.h"
#include "loom/autograd/grad_mode.h"
#include "loom/core/dispatch.h"
#include "loom/nn/loss.h"
#include "loom/ops/creation.h"
#include "loom/ops/elementwise.h"
#include "loom/ops/index.h"
#include "loom/ops/index_check.h"
#include "loom/ops/reduce.h"
#include "loom/ops/shape.h"

namespace loom {

using G = std::vector<Tensor>;

namespace {

// Inputs are read as (N, C, S): element (n, c, s) at n*C*S + c*S + s, S the product of the trailing dims.
struct ClassGeom {
  int64_t N = 1, C = 1, S = 1;
  int64_t class_dim = 1;
};

ClassGeom class_geom(const char* op, const Tensor& input, const Tensor& target, bool probs) {
  LOOM_CHECK(input.defined() && target.defined(), op, ": input and target must be defined tensors");
  LOOM_CHECK(is_floating(input.dtype()), op, ": input must be a floating point tensor, got ", input.dtype());
  LOOM_CHECK(input.dim() >= 1, op, ": input must be (C), (N, C) or (N, C, d1, ...), got shape ", input.shape());
  ClassGeom g;
  g.class_dim = input.dim() == 1 ? 0 : 1;
  g.C = input.size(g.class_dim);
  g.N = input.dim() == 1 ? 1 : input.size(0);
  for (int64_t d = 2; d < input.dim(); ++d) g.S *= input.size(d);
  if (probs) return g;
  Shape expected = input.shape();
  expected.erase(expected.begin() + g.class_dim);
  LOOM_CHECK(target.dtype() == DType::i64, op, ": class-index targets must be int64, got ", target.dtype(),
             " (floating targets must have the input's shape ", input.shape(), " to be class probabilities)");
  LOOM_CHECK(target.shape() == expected, op, ": target of shape ", target.shape(), " does not match input of shape ",
             input.shape(), " (expected ", expected, ")");
  return g;
}

Tensor checked_weight(const char* op, const Tensor& w, const Tensor& input, int64_t C) {
  if (!w.defined()) return w;
  LOOM_CHECK(w.dim() == 1 && w.size(0) == C, op, ": weight must be 1-D with one value per class (", C,
             "), got shape ", w.shape());
  LOOM_CHECK(w.dtype() == input.dtype(), op, ": weight must have the input's dtype ", input.dtype(), ", got ",
             w.dtype());
  return w;
}

// Every target is a class in [0, C) or the ignore_index. Returns a contiguous copy for the kernels.
Tensor checked_targets(const char* op, const Tensor& target, int64_t C, int64_t ignore) {
  Tensor t = target.contiguous();
  if (const auto bad = first_index_out_of_range(t, C, ignore))
    LOOM_FAIL(op, ": target ", *bad, " is out of bounds for ", C, " classes");
  return t;
}

const char* kCE = "cross_entropy";

Tensor cross_entropy_indices(const Tensor& input, const Tensor& target, const CrossEntropyOptions& o) {
  const ClassGeom g = class_geom(kCE, input, target, false);
  Tensor w = checked_weight(kCE, o.weight, input, g.C);
  if (w.defined()) w = w.detach().contiguous();
  Tensor t = target.contiguous();  // the kernel checks every target is in [0, C) or ignore_index
  Tensor x = input.is_contiguous() ? input.detach() : input.detach().contiguous();
  const int64_t R = g.N * g.S;
  const CrossEntropyGeom geo{g.N, g.C, g.S, o.ignore_index, o.label_smoothing};
  Tensor loss = make_tensor(target.shape(), x.dtype(), x.device()), lse = make_tensor({R}, x.dtype(), x.device());
  Tensor sums = make_tensor({2}, DType::f64, x.device());  // {sum of row losses, sum of row weights}
  backend_for(x).cross_entropy_forward(loss, lse, sums, x, t, w, geo);
  Tensor out = loss;
  double scale = 1.0;
  if (o.reduction == Reduction::Sum || o.reduction == Reduction::Mean) {
    const std::vector<double> s = sums.tolist();
    const double total = s[0], denom = s[1];
    if (o.reduction == Reduction::Mean) scale = 1.0 / denom;  // all rows ignored: 0/0 = NaN, as PyTorch
    out = full({}, total * scale, {.dtype = x.dtype(), .device = x.device()});
  }
  if (autograd::needs_grad({input})) {
    autograd::record("CrossEntropy", {out}, {input},
                     [sx = autograd::save(x, kCE), t, w, lse, geo, scale](const G& gr) {
                       const Tensor& xs = sx.get();
                       Tensor go = gr[0].contiguous();
                       Tensor dx = make_tensor(xs.shape(), xs.dtype(), xs.device());
                       backend_for(xs).cross_entropy_backward(dx, xs, t, w, lse, go, scale, geo);
                       return G{dx};
                     });
  }
  return out;
}

// Class probabilities: -sum_c w_c * target_c * log_softmax(input)_c, the Mean divided by the number of rows.
Tensor cross_entropy_probs(const Tensor& input, const Tensor& target, const CrossEntropyOptions& o) {
  const ClassGeom g = class_geom(kCE, input, target, true);
  LOOM_CHECK(target.dtype() == input.dtype(), kCE, ": probability targets must have the input's dtype ",
             input.dtype(), ", got ", target.dtype());
  Tensor w = checked_weight(kCE, o.weight, input, g.C);
  Tensor logp = log_softmax(input, g.class_dim);
  Tensor tgt = o.label_smoothing > 0 ? target * (1.0 - o.label_smoothing) + o.label_smoothing / double(g.C) : target;
  Tensor prod = logp * tgt;
  if (w.defined()) {
    Shape ws(size_t(input.dim()), 1);
    ws[size_t(g.class_dim)] = g.C;
    prod = prod * w.view(ws);
  }
  switch (o.reduction) {
    case Reduction::None: return -sum(prod, {g.class_dim});
    case Reduction::Sum: return -sum(prod);
    case Reduction::Mean: return -sum(prod) / double(input.numel() / std::max<int64_t>(g.C, 1));
    case Reduction::BatchMean: break;
  }
  return detail::reduce_loss(prod, o.reduction, kCE);  // throws for BatchMean
}

}  // namespace

Tensor cross_entropy(const Tensor& input, const Tensor& target, const CrossEntropyOptions& o) {
  LOOM_CHECK(o.label_smoothing >= 0 && o.label_smoothing <= 1, kCE, ": label_smoothing must be in [0, 1], got ",
             o.label_smoothing);
  LOOM_CHECK(o.reduction != Reduction::BatchMean, kCE, ": reduction 'batchmean' is only valid for kl_div");
  const bool probs = target.defined() && is_floating(target.dtype()) && target.shape() == input.shape();
  return probs ? cross_entropy_probs(input, target, o) : cross_entropy_indices(input, target, o);
}

Tensor nll_loss(const Tensor& input, const Tensor& target, const NLLOptions& o) {
  const char* op = "nll_loss";
  const ClassGeom g = class_geom(op, input, target, false);
  LOOM_CHECK(o.reduction != Reduction::BatchMean, op, ": reduction 'batchmean' is only valid for kl_div");
  Tensor w = checked_weight(op, o.weight, input, g.C);
  Tensor t = checked_targets(op, target, g.C, o.ignore_index);
  // Ignored targets gather class 0 and then get weight 0, so they add nothing to the sum or the denominator.
  Tensor valid = t != double(o.ignore_index);
  Tensor safe = where(valid, t, 0.0);
  Tensor wt = w.defined() ? index_select(w, 0, safe.flatten()).view(t.shape())
                          : ones(t.shape(), {.dtype = input.dtype(), .device = input.device()});
  wt = where(valid, wt, 0.0);
  Tensor picked = input.dim() == 1 ? gather(input, 0, safe.view({1})).view({})
                                   : gather(input, 1, safe.unsqueeze(1)).squeeze(1);
  Tensor loss = -picked * wt;
  switch (o.reduction) {
    case Reduction::None: return loss;
    case Reduction::Sum: return sum(loss);
    default: return sum(loss) / sum(wt);
  }
}

}  // namespace loom
