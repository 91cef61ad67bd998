// Fused normalisation ops: argument checks and autograd here, the kernels behind Backend::batch_norm_* and
// row_norm_* (loom/backend/cpu/norm.cpp, accumulating in double so float32 results agree with PyTorch to
// rounding). Each op records one autograd node whose backward uses the closed-form gradient (one pass for the
// per-channel sums, one to write dx) instead of the ten-node graph a composite of mean/var/sub/mul would build.
#include "loom/ops/norm.h"

#include <cmath>
#include <vector>

#include "loom/autograd/function.h"
#include "loom/backend/backend.h"
#include "loom/core/dispatch.h"
#include "loom/ops/creation.h"

namespace loom {

using autograd::needs_grad;
using autograd::record;
using autograd::save;
using G = std::vector<Tensor>;

namespace {

void check_input(const Tensor& x, const char* op) {
  LOOM_CHECK(x.defined(), op, ": the input is undefined");
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

// Float64 statistics (mean, var, rstd) per channel or row: the kernels accumulate in double.
Tensor stats(int64_t n, const Tensor& like) { return make_tensor({n}, DType::f64, like.device()); }

// Layer norm and group norm share everything but the geometry.
Tensor row_norm(const char* op, const Tensor& x0, const RowNormGeom& geo, const Tensor& w0, const Tensor& b0, double eps) {
  Tensor x = contig(x0), w = contig(w0), b = contig(b0);
  Tensor y = make_tensor(x.shape(), x.dtype(), x.device());
  Tensor mean = stats(geo.R, x), rstd = stats(geo.R, x);
  backend_for(x).row_norm_forward(y, mean, rstd, x, w, b, geo, eps);
  if (needs_grad({x0, w0, b0}))
    record(op, {y}, {x0, w0, b0},
           // The bias gradient takes the bias's shape: with a bias but no weight there is no w to copy it from.
           [op, geo, sx = save(x, op), sw = save(w, op), mean, rstd, bshape = b0.defined() ? b0.shape() : Shape{},
            gx = x0.requires_grad(), gw = w0.defined() && w0.requires_grad(),
            gb = b0.defined() && b0.requires_grad()](const G& g) {
             Tensor gc = g[0].contiguous();
             const Tensor& x = sx.get();
             const Tensor& w = sw.get();
             Tensor dx = gx ? make_tensor(x.shape(), x.dtype(), x.device()) : Tensor();
             Tensor dw = gw ? make_tensor(w.shape(), x.dtype(), x.device()) : Tensor();
             Tensor db = gb ? make_tensor(bshape, x.dtype(), x.device()) : Tensor();
             backend_for(x).row_norm_backward(dx, dw, db, gc, x, mean, rstd, w, geo);
             return G{dx, dw, db};
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
  const BatchNormGeom geo{N, C, S};
  Backend& be = backend_for(x);
  Tensor mean, invstd;
  {
    NoGradGuard ng;
    if (training) {
      Tensor var = stats(C, x);
      mean = stats(C, x);
      be.batch_norm_stats(mean, var, x, geo);
      invstd = (var + eps).rsqrt();
      if (running_mean.defined()) {
        // The running variance is the unbiased estimate, as PyTorch keeps it.
        const double M = double(N * S);
        Tensor rm = running_mean.detach(), rv = running_var.detach();
        rm.mul_(1.0 - momentum).add_(mean.to(rm.dtype()), momentum);
        rv.mul_(1.0 - momentum).add_((var * (M / (M - 1.0))).to(rv.dtype()), momentum);
      }
    } else {
      mean = running_mean.detach().to(DType::f64).clone();  // a copy: backward must not see later updates
      invstd = (running_var.detach().to(DType::f64) + eps).rsqrt().contiguous();
    }
  }
  be.batch_norm_apply(y, x, mean, invstd, w, b, geo);

  if (needs_grad({x0, w0, b0}))
    record("BatchNorm", {y}, {x0, w0, b0},
           [op, geo, training, sx = save(x, op), sw = save(w, op), mean, invstd, gx = x0.requires_grad(),
            gw = w0.defined() && w0.requires_grad(), gb = b0.defined() && b0.requires_grad()](const G& g) {
             Tensor gc = g[0].contiguous();
             const Tensor& x = sx.get();
             const Tensor& w = sw.get();
             Tensor dx = gx ? make_tensor(x.shape(), x.dtype(), x.device()) : Tensor();
             Tensor dw = gw ? make_tensor(w.shape(), w.dtype(), w.device()) : Tensor();
             Tensor db = gb ? make_tensor(w.shape(), w.dtype(), w.device()) : Tensor();
             backend_for(x).batch_norm_backward(dx, dw, db, gc, x, mean, invstd, w, training, geo);
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
  return row_norm("LayerNorm", x, RowNormGeom{K ? x.numel() / K : 0, 1, K, 1}, weight, bias, eps);
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
  return row_norm("GroupNorm", x, RowNormGeom{N * num_groups, num_groups, C / num_groups, S}, weight, bias, eps);
}

}  // namespace loom
