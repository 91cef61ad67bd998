// Fused normalisation ops. The kernels are plain loops over contiguous layouts that accumulate in double,
// so float32 results agree with PyTorch to rounding; float32 layer norm (and group norm without spatial
// dims) runs the vectorised row kernels of loom/backend/cpu/norm_kernels.h instead, 4-5x faster. Each op records one autograd node whose backward
// uses the closed-form gradient (one pass for the per-channel sums, one to write dx) instead of the
// ten-node graph a composite of mean/var/sub/mul would build.
//
// The kernels run on the CPU only: the Backend interface has no normalisation primitives yet. When a CUDA
// backend arrives they move behind it unchanged (they are written against raw pointers for that reason).
#include "loom/ops/norm.h"

#include <cmath>
#include <vector>

#include "loom/autograd/function.h"
#include "loom/backend/cpu/norm_kernels.h"
#include "loom/core/dispatch.h"
#include "loom/ops/creation.h"

namespace loom {

using autograd::needs_grad;
using autograd::record;
using autograd::save;
using G = std::vector<Tensor>;

namespace {

// Below this many elements a kernel runs on one thread: waking threads costs more than it saves.
constexpr int64_t kGrain = 32768;

void check_input(const Tensor& x, const char* op) {
  LOOM_CHECK(x.defined(), op, ": the input is undefined");
  LOOM_CHECK(x.device().type == DeviceType::CPU, op, ": only CPU tensors are supported, got ", x.device());
  LOOM_CHECK(x.dtype() == DType::f32 || x.dtype() == DType::f64, op,
             ": expected a float32 or float64 input, got ", x.dtype());
}

void check_param(const Tensor& p, const Tensor& x, int64_t n, const char* op, const char* what) {
  if (!p.defined()) return;
  LOOM_CHECK(p.numel() == n, op, ": ", what, " must have ", n, " elements for input of shape ", x.shape(),
             ", got shape ", p.shape());
  LOOM_CHECK(p.dtype() == x.dtype(), op, ": ", what, " has dtype ", p.dtype(), " but the input has dtype ",
             x.dtype());
}

Tensor contig(const Tensor& t) { return t.defined() ? t.detach().contiguous() : t; }

template <class T>
const T* cptr(const Tensor& t) { return t.defined() ? static_cast<const T*>(t.raw_data()) : nullptr; }
template <class T>
T* mptr(const Tensor& t) { return t.defined() ? static_cast<T*>(t.raw_data()) : nullptr; }

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

struct RowGeom {
  int64_t R, Gr, D, S;
  int64_t K() const { return D * S; }
};

template <class T>
void row_forward(const T* x, T* y, const RowGeom& g, const T* w, const T* b, double eps, double* mean,
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
void row_backward(const T* g, const T* x, const RowGeom& geo, const double* mean, const double* rstd, const T* w,
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
bool fast_rows(const RowGeom& g, DType dt) { return dt == DType::f32 && g.S == 1; }

void row_forward_f32(const float* x, float* y, const RowGeom& g, const float* w, const float* b, double eps,
                     double* mean, double* rstd) {
  const int64_t K = g.K();
#pragma omp parallel for schedule(static) if (g.R * K > kGrain)
  for (int64_t r = 0; r < g.R; ++r) {
    const int64_t c0 = (r % g.Gr) * g.D;
    cpu::ln_row_forward(x + r * K, y + r * K, K, w ? w + c0 : nullptr, b ? b + c0 : nullptr, eps, mean[r], rstd[r]);
  }
}

// dw and db are summed per thread in float rows, folded into per-thread double rows every kFold rows (so
// 6400 rows lose no more than 64 do), then merged across threads.
void row_backward_f32(const float* g, const float* x, const RowGeom& geo, const double* mean, const double* rstd,
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
      cpu::ln_row_backward(g + r * K, x + r * K, K, mean[r], rstd[r], w ? w + c0 : nullptr, dx ? dx + r * K : nullptr,
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

Tensor from_doubles(const std::vector<double>& v, const Tensor& like) {
  Tensor t = make_tensor(like.shape(), like.dtype(), like.device());
  dispatch_float(like.dtype(), "norm", [&]<class T>() {
    T* p = static_cast<T*>(t.raw_data());
    for (size_t i = 0; i < v.size(); ++i) p[i] = T(v[i]);
  });
  return t;
}

// Layer norm and group norm share everything but the geometry.
Tensor row_norm(const char* op, const Tensor& x0, const RowGeom& geo, const Tensor& w0, const Tensor& b0, double eps) {
  Tensor x = contig(x0), w = contig(w0), b = contig(b0);
  Tensor y = make_tensor(x.shape(), x.dtype(), x.device());
  std::vector<double> mean(static_cast<size_t>(geo.R)), rstd(static_cast<size_t>(geo.R));
  if (fast_rows(geo, x.dtype()))
    row_forward_f32(cptr<float>(x), mptr<float>(y), geo, cptr<float>(w), cptr<float>(b), eps, mean.data(), rstd.data());
  else
    dispatch_float(x.dtype(), op, [&]<class T>() {
      row_forward<T>(cptr<T>(x), mptr<T>(y), geo, cptr<T>(w), cptr<T>(b), eps, mean.data(), rstd.data());
    });
  if (needs_grad({x0, w0, b0}))
    record(op, {y}, {x0, w0, b0},
           // The bias gradient takes the bias's shape: with a bias but no weight there is no w to copy it from.
           [op, geo, sx = save(x, op), sw = save(w, op), mean = std::move(mean), rstd = std::move(rstd),
            bshape = b0.defined() ? b0.shape() : Shape{},
            gx = x0.requires_grad(), gw = w0.defined() && w0.requires_grad(),
            gb = b0.defined() && b0.requires_grad()](const G& g) {
             Tensor gc = g[0].contiguous();
             const Tensor& x = sx.get();
             const Tensor& w = sw.get();
             Tensor dx = gx ? make_tensor(x.shape(), x.dtype(), x.device()) : Tensor();
             std::vector<double> dw(gw ? size_t(geo.Gr * geo.D) : 0), db(gb ? size_t(geo.Gr * geo.D) : 0);
             if (fast_rows(geo, x.dtype()))
               row_backward_f32(cptr<float>(gc), cptr<float>(x), geo, mean.data(), rstd.data(), cptr<float>(w),
                                mptr<float>(dx), gw ? dw.data() : nullptr, gb ? db.data() : nullptr);
             else
               dispatch_float(x.dtype(), op, [&]<class T>() {
                 row_backward<T>(cptr<T>(gc), cptr<T>(x), geo, mean.data(), rstd.data(), cptr<T>(w), mptr<T>(dx),
                                 gw ? dw.data() : nullptr, gb ? db.data() : nullptr);
               });
             return G{dx, gw ? from_doubles(dw, w) : Tensor(), gb ? from_doubles(db, make_tensor(bshape, x.dtype(), x.device())) : Tensor()};
           });
  return y;
}

}  // namespace

Tensor batch_norm(const Tensor& x0, const Tensor& running_mean, const Tensor& running_var, const Tensor& w0,
                  const Tensor& b0, bool training, double momentum, double eps) {
  const char* op = "batch_norm";
  check_input(x0, op);
  LOOM_CHECK(x0.dim() >= 2, op, ": input must be (N, C) or (N, C, *), got shape ", x0.shape());
  const int64_t N = x0.size(0), C = x0.size(1), S = N * C != 0 ? x0.numel() / (N * C) : 0;
  check_param(w0, x0, C, op, "weight");
  check_param(b0, x0, C, op, "bias");
  check_param(running_mean, x0, C, op, "running_mean");
  check_param(running_var, x0, C, op, "running_var");
  LOOM_CHECK(running_mean.defined() == running_var.defined(), op,
             ": running_mean and running_var must be given together");
  LOOM_CHECK(training || running_mean.defined(), op, ": eval mode needs running_mean and running_var");
  LOOM_CHECK(!training || N * S > 1, op, ": expected more than 1 value per channel when training, got input of shape ",
             x0.shape());

  Tensor x = contig(x0), w = contig(w0), b = contig(b0);
  Tensor y = make_tensor(x.shape(), x.dtype(), x.device());
  std::vector<double> mean(static_cast<size_t>(C)), invstd(static_cast<size_t>(C));
  dispatch_float(x.dtype(), op, [&]<class T>() {
    if (training) {
      std::vector<double> var(static_cast<size_t>(C));
      bn_stats<T>(cptr<T>(x), N, C, S, mean.data(), var.data());
      for (size_t c = 0; c < size_t(C); ++c) invstd[c] = 1.0 / std::sqrt(var[c] + eps);
      if (running_mean.defined()) {
        // The running variance is the unbiased estimate, as PyTorch keeps it.
        const double M = double(N * S);
        std::vector<double> unbiased(var);
        for (auto& v : unbiased) v *= M / (M - 1.0);
        NoGradGuard ng;
        Tensor rm = running_mean.detach(), rv = running_var.detach();
        rm.mul_(1.0 - momentum).add_(from_doubles(mean, rm), momentum);
        rv.mul_(1.0 - momentum).add_(from_doubles(unbiased, rv), momentum);
      }
    } else {
      Tensor rm = contig(running_mean), rv = contig(running_var);
      for (int64_t c = 0; c < C; ++c) {
        mean[size_t(c)] = cptr<T>(rm)[c];
        invstd[size_t(c)] = 1.0 / std::sqrt(double(cptr<T>(rv)[c]) + eps);
      }
    }
    bn_apply<T>(cptr<T>(x), mptr<T>(y), N, C, S, mean.data(), invstd.data(), cptr<T>(w), cptr<T>(b));
  });

  if (needs_grad({x0, w0, b0}))
    record("BatchNorm", {y}, {x0, w0, b0},
           [op, N, C, S, training, sx = save(x, op), sw = save(w, op), mean = std::move(mean),
            invstd = std::move(invstd), gx = x0.requires_grad(), gw = w0.defined() && w0.requires_grad(),
            gb = b0.defined() && b0.requires_grad()](const G& g) {
             Tensor gc = g[0].contiguous();
             const Tensor& x = sx.get();
             const Tensor& w = sw.get();
             Tensor dx = gx ? make_tensor(x.shape(), x.dtype(), x.device()) : Tensor();
             Tensor dw = gw ? make_tensor(w.shape(), w.dtype(), w.device()) : Tensor();
             Tensor db = gb ? make_tensor(w.shape(), w.dtype(), w.device()) : Tensor();
             dispatch_float(x.dtype(), op, [&]<class T>() {
               bn_backward<T>(cptr<T>(gc), cptr<T>(x), N, C, S, mean.data(), invstd.data(), cptr<T>(w), training,
                              mptr<T>(dx), mptr<T>(dw), mptr<T>(db));
             });
             return G{dx, dw, db};
           });
  return y;
}

Tensor layer_norm(const Tensor& x, const Shape& normalized_shape, const Tensor& weight, const Tensor& bias,
                  double eps) {
  const char* op = "layer_norm";
  check_input(x, op);
  const int64_t nd = int64_t(normalized_shape.size());
  bool ok = nd >= 1 && x.dim() >= nd;
  for (int64_t i = 0; ok && i < nd; ++i) ok = x.size(x.dim() - nd + i) == normalized_shape[size_t(i)];
  LOOM_CHECK(ok, op, ": input of shape ", x.shape(), " does not end with normalized_shape ", normalized_shape);
  for (const Tensor* p : {&weight, &bias})
    LOOM_CHECK(!p->defined() || p->shape() == normalized_shape, op, ": ", p == &weight ? "weight" : "bias",
               " must have shape ", normalized_shape, ", got ", p->shape());
  const int64_t K = loom::numel(normalized_shape);
  check_param(weight, x, K, op, "weight");
  check_param(bias, x, K, op, "bias");
  return row_norm("LayerNorm", x, {K ? x.numel() / K : 0, 1, K, 1}, weight, bias, eps);
}

Tensor group_norm(const Tensor& x, int64_t num_groups, const Tensor& weight, const Tensor& bias, double eps) {
  const char* op = "group_norm";
  check_input(x, op);
  LOOM_CHECK(x.dim() >= 2, op, ": input must be (N, C) or (N, C, *), got shape ", x.shape());
  const int64_t N = x.size(0), C = x.size(1);
  LOOM_CHECK(num_groups > 0 && C % num_groups == 0, op, ": the number of channels (", C,
             ") must be divisible by num_groups (", num_groups, ")");
  check_param(weight, x, C, op, "weight");
  check_param(bias, x, C, op, "bias");
  const int64_t S = N * C != 0 ? x.numel() / (N * C) : 0;
  return row_norm("GroupNorm", x, {N * num_groups, num_groups, C / num_groups, S}, weight, bias, eps);
}

}  // namespace loom
