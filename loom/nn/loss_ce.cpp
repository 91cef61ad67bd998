// Cross-entropy and negative log-likelihood over classes.
//
// Cross-entropy with class indices is the classifier hot path, so it is one fused kernel: each row (one
// sample, one spatial position) takes its max, log-sum-exp and loss in a single pass over its C logits,
// and the backward writes (softmax - onehot) * scale straight from the saved log-sum-exp, instead of
// materialising log_softmax, a gather and their gradients. nll_loss and probability targets are
// composites of differentiable ops (and serve as the reference the fused kernel is tested against).
#include <cmath>

#include "loom/autograd/function.h"
#include "loom/backend/cpu/vec_math.h"
#include "loom/autograd/grad_mode.h"
#include "loom/core/dispatch.h"
#include "loom/nn/loss.h"
#include "loom/ops/creation.h"
#include "loom/ops/elementwise.h"
#include "loom/ops/index.h"
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
  const int64_t* p = t.data<int64_t>();
  for (int64_t i = 0, n = t.numel(); i < n; ++i)
    LOOM_CHECK(p[i] == ignore || (p[i] >= 0 && p[i] < C), op, ": target ", p[i], " is out of bounds for ", C,
               " classes");
  return t;
}

const char* kCE = "cross_entropy";

// Forward over rows: per-row loss, log-sum-exp (kept for the backward) and the row's weight w[target]
// (0 for ignored rows), which sums to the denominator of the Mean reduction.
template <class T>
void ce_forward(const T* x, const int64_t* t, const T* w, const ClassGeom& g, int64_t ignore, double eps, T* loss,
                T* lse, double* row_w) {
  const int64_t R = g.N * g.S, C = g.C, S = g.S;
#pragma omp parallel for schedule(static) if (R * C >= 32768)
  for (int64_t r = 0; r < R; ++r) {
    const int64_t k = t[r];
    if (k == ignore) {
      loss[r] = T(0), lse[r] = T(0), row_w[r] = 0;
      continue;
    }
    const T* row = x + (r / S) * C * S + r % S;  // logit c at row[c * S]
    T m = row[0];
    for (int64_t c = 1; c < C; ++c) m = std::max(m, row[c * S]);
    double acc = 0;
#pragma omp simd reduction(+ : acc)
    for (int64_t c = 0; c < C; ++c) acc += double(cpu::vexp(row[c * S] - m));
    const double l = double(m) + std::log(acc);
    const double wk = w ? double(w[k]) : 1.0;
    double v = (1.0 - eps) * wk * (l - double(row[k * S]));
    if (eps > 0) {
      double smooth = 0;  // sum_c w_c * -log p_c: the loss against the uniform distribution
      for (int64_t c = 0; c < C; ++c) smooth += (w ? double(w[c]) : 1.0) * (l - double(row[c * S]));
      v += eps / double(C) * smooth;
    }
    loss[r] = T(v), lse[r] = T(l), row_w[r] = wk;
  }
}

// dx = scale_r * ((1 - eps) w_k (p - onehot_k) + eps / C (sum(w) p - w)), zero on ignored rows.
template <class T>
void ce_backward(const T* x, const int64_t* t, const T* w, const T* lse, const T* gout, bool per_row, double scale,
                 const ClassGeom& g, int64_t ignore, double eps, T* dx) {
  const int64_t R = g.N * g.S, C = g.C, S = g.S;
  double wsum = double(C);
  if (w) {
    wsum = 0;
    for (int64_t c = 0; c < C; ++c) wsum += double(w[c]);
  }
#pragma omp parallel for schedule(static) if (R * C >= 32768)
  for (int64_t r = 0; r < R; ++r) {
    const int64_t k = t[r], off = (r / S) * C * S + r % S;
    T* drow = dx + off;
    if (k == ignore) {
      for (int64_t c = 0; c < C; ++c) drow[c * S] = T(0);
      continue;
    }
    const T* row = x + off;
    const double gr = double(per_row ? gout[r] : gout[0]) * scale;
    const double a = (1.0 - eps) * (w ? double(w[k]) : 1.0), b = eps / double(C);
    const T l = lse[r];
    if (eps == 0) {
      // The common case, vectorised: p in T through the branch-free exp, one-hot fixed up after.
      const T ta = T(a * gr);
#pragma omp simd
      for (int64_t c = 0; c < C; ++c) drow[c * S] = ta * cpu::vexp(row[c * S] - l);
      drow[k * S] -= ta;
      continue;
    }
    for (int64_t c = 0; c < C; ++c) {
      const double p = double(cpu::vexp(row[c * S] - l));
      double d = a * (p - (c == k ? 1.0 : 0.0));
      d += b * (wsum * p - (w ? double(w[c]) : 1.0));
      drow[c * S] = T(gr * d);
    }
  }
}

Tensor cross_entropy_indices(const Tensor& input, const Tensor& target, const CrossEntropyOptions& o) {
  const ClassGeom g = class_geom(kCE, input, target, false);
  LOOM_CHECK(input.device().type == DeviceType::CPU, kCE, ": the fused kernel runs on CPU tensors, got ",
             input.device());
  Tensor w = checked_weight(kCE, o.weight, input, g.C);
  if (w.defined()) w = w.detach().contiguous();
  Tensor t = checked_targets(kCE, target, g.C, o.ignore_index);
  Tensor x = input.is_contiguous() ? input.detach() : input.detach().contiguous();
  const int64_t R = g.N * g.S;
  Tensor loss = make_tensor(target.shape(), x.dtype(), x.device()), lse = make_tensor({R}, x.dtype(), x.device());
  std::vector<double> row_w(size_t(R), 0.0);
  double total = 0, denom = 0;
  dispatch_float(x.dtype(), kCE, [&]<class T>() {
    ce_forward<T>(x.data<T>(), t.data<int64_t>(), w.defined() ? w.data<T>() : nullptr, g, o.ignore_index,
                  o.label_smoothing, loss.data<T>(), lse.data<T>(), row_w.data());
    const T* l = loss.data<T>();
    for (int64_t r = 0; r < R; ++r) total += double(l[r]), denom += row_w[size_t(r)];  // in order: deterministic
  });
  Tensor out = loss;
  double scale = 1.0;
  if (o.reduction == Reduction::Sum || o.reduction == Reduction::Mean) {
    if (o.reduction == Reduction::Mean) scale = 1.0 / denom;  // all rows ignored: 0/0 = NaN, as PyTorch
    out = full({}, total * scale, {.dtype = x.dtype()});
  }
  if (autograd::needs_grad({input})) {
    const bool per_row = o.reduction == Reduction::None;
    autograd::record("CrossEntropy", {out}, {input},
                     [sx = autograd::save(x, kCE), t, w, lse, g, scale, per_row, ignore = o.ignore_index,
                      eps = o.label_smoothing](const G& gr) {
                       const Tensor& xs = sx.get();
                       Tensor go = gr[0].contiguous();
                       Tensor dx = make_tensor(xs.shape(), xs.dtype(), xs.device());
                       dispatch_float(xs.dtype(), kCE, [&]<class T>() {
                         ce_backward<T>(xs.data<T>(), t.data<int64_t>(), w.defined() ? w.data<T>() : nullptr,
                                        lse.data<T>(), go.data<T>(), per_row, scale, g, ignore, eps, dx.data<T>());
                       });
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
  Tensor safe = make_tensor(t.shape(), DType::i64);
  {
    const int64_t* src = t.data<int64_t>();
    int64_t* dst = safe.data<int64_t>();
    for (int64_t i = 0, n = t.numel(); i < n; ++i) dst[i] = src[i] == o.ignore_index ? 0 : src[i];
  }
  Tensor wt = w.defined() ? index_select(w, 0, safe.flatten()).view(t.shape())
                          : ones(t.shape(), {.dtype = input.dtype()});
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
