// Normalisation kernels (batch norm, layer norm, group norm) behind Backend::batch_norm_* and row_norm_*.
// Plain loops over contiguous layouts that accumulate in double, so float32 results agree with PyTorch to
// rounding; float32 rows whose channels are contiguous run the vectorised row kernels of norm_kernels.h
// instead (4-5x faster). Statistics (mean, var, invstd, rstd) are float64 tensors the op keeps for backward.
#include <cmath>
#include <vector>

#include "loom/backend/cpu/cpu_backend.h"
#include "loom/backend/cpu/norm_kernels.h"
#include "loom/core/dispatch.h"

namespace loom::cpu {

namespace {

// Below this many elements a kernel runs on one thread: waking threads costs more than it saves.
constexpr int64_t kGrain = 32768;

template <class T>
const T* cptr(const Tensor& t) { return t.defined() ? static_cast<const T*>(t.raw_data()) : nullptr; }
template <class T>
T* mptr(const Tensor& t) { return t.defined() ? static_cast<T*>(t.raw_data()) : nullptr; }
const double* dptr(const Tensor& t) { return static_cast<const double*>(t.raw_data()); }
double* dmptr(const Tensor& t) { return static_cast<double*>(t.raw_data()); }

// ---- batch norm: x is (N, C, S) contiguous; statistics per channel over M = N * S values.

template <class T>
void bn_stats(const T* x, int64_t N, int64_t C, int64_t S, double* mean, double* var) {
  // Two passes (mean, then squared deviations): the one-pass formula loses digits when |mean| >> std.
#pragma omp parallel for if (N * C * S > kGrain)
  for (int64_t c = 0; c < C; ++c) {
    double s = 0;
    for (int64_t n = 0; n < N; ++n) {
      const T* p = x + (n * C + c) * S;
      for (int64_t i = 0; i < S; ++i) s += p[i];
    }
    const double m = s / double(N * S);
    double q = 0;
    for (int64_t n = 0; n < N; ++n) {
      const T* p = x + (n * C + c) * S;
      for (int64_t i = 0; i < S; ++i) q += (p[i] - m) * (p[i] - m);
    }
    mean[c] = m;
    var[c] = q / double(N * S);
  }
}

template <class T>
void bn_apply(const T* x, T* y, int64_t N, int64_t C, int64_t S, const double* mean, const double* invstd,
              const T* w, const T* b) {
#pragma omp parallel for collapse(2) if (N * C * S > kGrain)
  for (int64_t n = 0; n < N; ++n)
    for (int64_t c = 0; c < C; ++c) {
      const double a = invstd[c] * (w ? double(w[c]) : 1.0);
      const double sh = (b ? double(b[c]) : 0.0) - mean[c] * a;
      const T* p = x + (n * C + c) * S;
      T* q = y + (n * C + c) * S;
      for (int64_t i = 0; i < S; ++i) q[i] = T(p[i] * a + sh);
    }
}

// With batch statistics: dx = w * invstd * (g - mean(g) - xhat * mean(g * xhat)).
// With running statistics (constants): dx = w * invstd * g. In both: dw = sum(g * xhat), db = sum(g).
template <class T>
void bn_backward(const T* g, const T* x, int64_t N, int64_t C, int64_t S, const double* mean, const double* invstd,
                 const T* w, bool batch_stats, T* dx, T* dw, T* db) {
  const double M = double(N * S);
#pragma omp parallel for if (N * C * S > kGrain)
  for (int64_t c = 0; c < C; ++c) {
    const double m = mean[c], is = invstd[c];
    double sg = 0, sgx = 0;
    for (int64_t n = 0; n < N; ++n) {
      const T* gp = g + (n * C + c) * S;
      const T* xp = x + (n * C + c) * S;
      for (int64_t i = 0; i < S; ++i) {
        sg += gp[i];
        sgx += gp[i] * (xp[i] - m);
      }
    }
    if (dw) dw[c] = T(sgx * is);
    if (db) db[c] = T(sg);
    if (!dx) continue;
    const double a = is * (w ? double(w[c]) : 1.0);
    const double mg = batch_stats ? sg / M : 0.0, k = batch_stats ? sgx * is * is / M : 0.0;
    for (int64_t n = 0; n < N; ++n) {
      const T* gp = g + (n * C + c) * S;
      const T* xp = x + (n * C + c) * S;
      T* dp = dx + (n * C + c) * S;
      for (int64_t i = 0; i < S; ++i) dp[i] = T(a * (gp[i] - mg - (xp[i] - m) * k));
    }
  }
}

// ---- row norm (layer norm and group norm): x is R rows of K = D * S values, statistics per row. The
// affine parameters are per channel: element (d, s) of row r belongs to channel (r % Gr) * D + d. Layer
// norm is Gr = 1, D = K, S = 1; group norm is R = N * groups, Gr = groups, D = C / groups, S = spatial size.


template <class T>
void row_forward(const T* x, T* y, const RowNormGeom& g, const T* w, const T* b, double eps, double* mean,
                 double* rstd) {
  const int64_t K = g.K();
#pragma omp parallel for if (g.R * K > kGrain)
  for (int64_t r = 0; r < g.R; ++r) {
    const T* p = x + r * K;
    double s = 0, q = 0;
    for (int64_t k = 0; k < K; ++k) s += p[k];
    const double m = s / double(K);
    for (int64_t k = 0; k < K; ++k) q += (p[k] - m) * (p[k] - m);
    const double rs = 1.0 / std::sqrt(q / double(K) + eps);
    mean[r] = m;
    rstd[r] = rs;
    const int64_t c0 = (r % g.Gr) * g.D;
    T* o = y + r * K;
    for (int64_t d = 0; d < g.D; ++d) {
      const double a = rs * (w ? double(w[c0 + d]) : 1.0);
      const double sh = (b ? double(b[c0 + d]) : 0.0) - m * a;
      for (int64_t i = 0; i < g.S; ++i) o[d * g.S + i] = T(p[d * g.S + i] * a + sh);
    }
  }
}

// dx = rstd * (dxhat - mean(dxhat) - xhat * mean(dxhat * xhat)) with dxhat = g * w, per row;
// dw[c] = sum(g * xhat), db[c] = sum(g) over every element of channel c (summed per thread, then merged).
template <class T>
void row_backward(const T* g, const T* x, const RowNormGeom& geo, const double* mean, const double* rstd, const T* w,
                  T* dx, double* dw, double* db) {
  const int64_t K = geo.K(), CH = geo.Gr * geo.D;
#pragma omp parallel if (geo.R * K > kGrain)
  {
    std::vector<double> lw(dw ? size_t(CH) : 0), lb(db ? size_t(CH) : 0);
#pragma omp for
    for (int64_t r = 0; r < geo.R; ++r) {
      const T* gp = g + r * K;
      const T* xp = x + r * K;
      const double m = mean[r], rs = rstd[r];
      const int64_t c0 = (r % geo.Gr) * geo.D;
      double s1 = 0, s2 = 0;
      for (int64_t d = 0; d < geo.D; ++d) {
        const double wc = w ? double(w[c0 + d]) : 1.0;
        double sg = 0, sgx = 0;
        for (int64_t i = 0; i < geo.S; ++i) {
          sg += gp[d * geo.S + i];
          sgx += gp[d * geo.S + i] * (xp[d * geo.S + i] - m);
        }
        s1 += sg * wc;
        s2 += sgx * wc;
        if (dw) lw[size_t(c0 + d)] += sgx * rs;
        if (db) lb[size_t(c0 + d)] += sg;
      }
      if (!dx) continue;
      const double k1 = s1 / double(K), k2 = s2 * rs * rs / double(K);
      T* dp = dx + r * K;
      for (int64_t d = 0; d < geo.D; ++d) {
        const double wc = w ? double(w[c0 + d]) : 1.0;
        for (int64_t i = 0; i < geo.S; ++i) {
          const int64_t k = d * geo.S + i;
          dp[k] = T(rs * (gp[k] * wc - k1 - (xp[k] - m) * k2));
        }
      }
    }
#pragma omp critical
    for (int64_t c = 0; c < CH; ++c) {
      if (dw) dw[c] += lw[size_t(c)];
      if (db) db[c] += lb[size_t(c)];
    }
  }
}

// Float32 rows whose channels are contiguous (S == 1: layer norm, and group norm without spatial dims) take
// the vectorised kernels of norm_kernels.h; float64 (what gradcheck runs) and spatial group norm keep the
// double loops above.
bool fast_rows(const RowNormGeom& g, DType dt) { return dt == DType::f32 && g.S == 1; }

void row_forward_f32(const float* x, float* y, const RowNormGeom& g, const float* w, const float* b, double eps,
                     double* mean, double* rstd) {
  const int64_t K = g.K();
#pragma omp parallel for schedule(static) if (g.R * K > kGrain)
  for (int64_t r = 0; r < g.R; ++r) {
    const int64_t c0 = (r % g.Gr) * g.D;
    ln_row_forward(x + r * K, y + r * K, K, w ? w + c0 : nullptr, b ? b + c0 : nullptr, eps, mean[r], rstd[r]);
  }
}

// dw and db are summed per thread in float rows, folded into per-thread double rows every kFold rows (so
// 6400 rows lose no more than 64 do), then merged across threads.
void row_backward_f32(const float* g, const float* x, const RowNormGeom& geo, const double* mean, const double* rstd,
                      const float* w, float* dx, double* dw, double* db) {
  constexpr int64_t kFold = 64;
  const int64_t K = geo.K(), CH = geo.Gr * geo.D;
#pragma omp parallel if (geo.R * K > kGrain)
  {
    std::vector<float> fw(dw ? size_t(CH) : 0), fb(db ? size_t(CH) : 0);
    std::vector<double> lw(fw.size()), lb(fb.size());
    auto fold = [&] {
      for (size_t c = 0; c < fw.size(); ++c) lw[c] += fw[c], fw[c] = 0;
      for (size_t c = 0; c < fb.size(); ++c) lb[c] += fb[c], fb[c] = 0;
    };
    int64_t since = 0;
#pragma omp for schedule(static)
    for (int64_t r = 0; r < geo.R; ++r) {
      const int64_t c0 = (r % geo.Gr) * geo.D;
      ln_row_backward(g + r * K, x + r * K, K, mean[r], rstd[r], w ? w + c0 : nullptr, dx ? dx + r * K : nullptr,
                           dw ? fw.data() + c0 : nullptr, db ? fb.data() + c0 : nullptr);
      if (++since == kFold) fold(), since = 0;
    }
    fold();
#pragma omp critical
    for (int64_t c = 0; c < CH; ++c) {
      if (dw) dw[c] += lw[size_t(c)];
      if (db) db[c] += lb[size_t(c)];
    }
  }
}

// Per-channel double sums into a tensor of the parameter's dtype.
void store_doubles(const std::vector<double>& v, const Tensor& out) {
  if (!out.defined()) return;
  dispatch_float(out.dtype(), "norm", [&]<class T>() {
    T* p = mptr<T>(out);
    for (size_t i = 0; i < v.size(); ++i) p[i] = T(v[i]);
  });
}

}  // namespace

void CpuBackend::batch_norm_stats(Tensor& mean, Tensor& var, const Tensor& x, const BatchNormGeom& g) {
  dispatch_float(x.dtype(), "batch_norm", [&]<class T>() { bn_stats<T>(cptr<T>(x), g.N, g.C, g.S, dmptr(mean), dmptr(var)); });
}

void CpuBackend::batch_norm_apply(Tensor& y, const Tensor& x, const Tensor& mean, const Tensor& invstd, const Tensor& w,
                                  const Tensor& b, const BatchNormGeom& g) {
  dispatch_float(x.dtype(), "batch_norm", [&]<class T>() {
    bn_apply<T>(cptr<T>(x), mptr<T>(y), g.N, g.C, g.S, dptr(mean), dptr(invstd), cptr<T>(w), cptr<T>(b));
  });
}

void CpuBackend::batch_norm_backward(Tensor& dx, Tensor& dw, Tensor& db, const Tensor& gout, const Tensor& x,
                                     const Tensor& mean, const Tensor& invstd, const Tensor& w, bool batch_stats,
                                     const BatchNormGeom& g) {
  dispatch_float(x.dtype(), "batch_norm", [&]<class T>() {
    bn_backward<T>(cptr<T>(gout), cptr<T>(x), g.N, g.C, g.S, dptr(mean), dptr(invstd), cptr<T>(w), batch_stats,
                   mptr<T>(dx), mptr<T>(dw), mptr<T>(db));
  });
}

void CpuBackend::row_norm_forward(Tensor& y, Tensor& mean, Tensor& rstd, const Tensor& x, const Tensor& w,
                                  const Tensor& b, const RowNormGeom& geo, double eps) {
  if (fast_rows(geo, x.dtype()))
    row_forward_f32(cptr<float>(x), mptr<float>(y), geo, cptr<float>(w), cptr<float>(b), eps, dmptr(mean), dmptr(rstd));
  else
    dispatch_float(x.dtype(), "row_norm", [&]<class T>() {
      row_forward<T>(cptr<T>(x), mptr<T>(y), geo, cptr<T>(w), cptr<T>(b), eps, dmptr(mean), dmptr(rstd));
    });
}

void CpuBackend::row_norm_backward(Tensor& dx, Tensor& dw, Tensor& db, const Tensor& gout, const Tensor& x,
                                   const Tensor& mean, const Tensor& rstd, const Tensor& w, const RowNormGeom& geo) {
  const size_t CH = size_t(geo.Gr * geo.D);
  std::vector<double> sw(dw.defined() ? CH : 0), sb(db.defined() ? CH : 0);
  if (fast_rows(geo, x.dtype()))
    row_backward_f32(cptr<float>(gout), cptr<float>(x), geo, dptr(mean), dptr(rstd), cptr<float>(w), mptr<float>(dx),
                     dw.defined() ? sw.data() : nullptr, db.defined() ? sb.data() : nullptr);
  else
    dispatch_float(x.dtype(), "row_norm", [&]<class T>() {
      row_backward<T>(cptr<T>(gout), cptr<T>(x), geo, dptr(mean), dptr(rstd), cptr<T>(w), mptr<T>(dx),
                      dw.defined() ? sw.data() : nullptr, db.defined() ? sb.data() : nullptr);
    });
  store_doubles(sw, dw);
  store_doubles(sb, db);
}

}  // namespace loom::cpu
