// The fused cross-entropy kernels behind Backend::cross_entropy_forward / _backward (class-index targets).
// Each row (one sample, one spatial position) takes its max, log-sum-exp and loss in a single pass over its C
// logits, and the backward writes (softmax - onehot) * scale straight from the saved log-sum-exp, instead of
// materialising log_softmax, a gather and their gradients.
#include <cmath>
#include <vector>

#include "loom/backend/cpu/cpu_backend.h"
#include "loom/backend/cpu/vec_math.h"
#include "loom/core/dispatch.h"

namespace loom::cpu {

namespace {

// Forward over rows: per-row loss, log-sum-exp (kept for the backward) and the row's weight w[target]
// (0 for ignored rows), which sums to the denominator of the Mean reduction.
template <class T>
void ce_forward(const T* x, const int64_t* t, const T* w, const CrossEntropyGeom& g, int64_t ignore, double eps, T* loss,
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
                 const CrossEntropyGeom& g, int64_t ignore, double eps, T* dx) {
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

}  // namespace

void CpuBackend::cross_entropy_forward(Tensor& loss, Tensor& lse, Tensor& sums, const Tensor& x, const Tensor& target,
                                       const Tensor& weight, const CrossEntropyGeom& g) {
  const int64_t R = g.N * g.S;
  const int64_t* t = static_cast<const int64_t*>(target.raw_data());
  for (int64_t r = 0; r < R; ++r)  // argument check here, where the targets are readable: every one in [0, C)
    LOOM_CHECK(t[r] == g.ignore_index || (t[r] >= 0 && t[r] < g.C), "cross_entropy: target ", t[r],
               " is out of bounds for ", g.C, " classes");
  std::vector<double> row_w(size_t(R), 0.0);
  double total = 0, denom = 0;
  dispatch_float(x.dtype(), "cross_entropy", [&]<class T>() {
    ce_forward<T>(static_cast<const T*>(x.raw_data()), t, weight.defined() ? static_cast<const T*>(weight.raw_data()) : nullptr,
                  g, g.ignore_index, g.label_smoothing, static_cast<T*>(loss.raw_data()), static_cast<T*>(lse.raw_data()),
                  row_w.data());
    const T* l = static_cast<const T*>(loss.raw_data());
    for (int64_t r = 0; r < R; ++r) total += double(l[r]), denom += row_w[size_t(r)];  // in order: deterministic
  });
  double* s = static_cast<double*>(sums.raw_data());
  s[0] = total, s[1] = denom;
}

void CpuBackend::cross_entropy_backward(Tensor& dx, const Tensor& x, const Tensor& target, const Tensor& weight,
                                        const Tensor& lse, const Tensor& gout, double scale, const CrossEntropyGeom& g) {
  const bool per_row = gout.numel() != 1;  // reduction none: one gradient per row
  dispatch_float(x.dtype(), "cross_entropy", [&]<class T>() {
    ce_backward<T>(static_cast<const T*>(x.raw_data()), static_cast<const int64_t*>(target.raw_data()),
                   weight.defined() ? static_cast<const T*>(weight.raw_data()) : nullptr,
                   static_cast<const T*>(lse.raw_data()), static_cast<const T*>(gout.raw_data()), per_row, scale, g,
                   g.ignore_index, g.label_smoothing, static_cast<T*>(dx.raw_data()));
  });
}

}  // namespace loom::cpu
