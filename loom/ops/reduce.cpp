// Reductions with autograd. Gradients of sum/mean broadcast back; max/min send the gradient to the
// selected element (amax/amin split it evenly among ties, as PyTorch does).
#include "loom/ops/reduce.h"

#include <algorithm>
#include <cmath>

#include "loom/autograd/function.h"
#include "loom/backend/backend.h"
#include "loom/ops/creation.h"
#include "loom/ops/elementwise.h"
#include "loom/ops/index.h"
#include "loom/ops/shape.h"

namespace loom {

using autograd::needs_grad;
using autograd::record;
using autograd::save;
using G = std::vector<Tensor>;

namespace {

Shape norm_dims(const Tensor& x, const Shape& dims, const char* op) {
  Shape d;
  if (dims.empty()) {
    for (int64_t i = 0; i < x.dim(); ++i) d.push_back(i);
    return d;
  }
  for (auto v : dims) d.push_back(wrap_dim(v, x.dim(), op));
  std::sort(d.begin(), d.end());
  LOOM_CHECK(std::adjacent_find(d.begin(), d.end()) == d.end(), op, ": dim appears more than once in ", dims);
  return d;
}

Shape keep_shape(const Tensor& x, const Shape& dims) {
  Shape s = x.shape();
  for (auto d : dims) s[size_t(d)] = 1;
  return s;
}

Shape drop_shape(const Tensor& x, const Shape& dims) {
  Shape s;
  for (int64_t i = 0; i < x.dim(); ++i)
    if (std::find(dims.begin(), dims.end(), i) == dims.end()) s.push_back(x.shape()[size_t(i)]);
  return s;
}

Tensor run_reduce(ReduceOp op, const Tensor& x, const Shape& dims, bool keepdim, DType out_dt) {
  Tensor src = x;
  if (src.dtype() != out_dt) src = x.detach().to(out_dt);
  Tensor out = make_tensor(keep_shape(src, dims), out_dt, x.device());
  if (x.dim() == 0) backend_for(x).copy(out, src);
  else backend_for(x).reduce(op, out, src, dims);
  return keepdim ? out : out.view(drop_shape(src, dims));
}

// A gradient of a reduced output, reshaped to broadcast against the input.
Tensor unreduce(const Tensor& g, const Shape& keep) { return g.reshape(keep); }

}  // namespace

Tensor sum(const Tensor& x, const Shape& dims0, bool keepdim) {
  Shape dims = norm_dims(x, dims0, "sum");
  DType dt = is_integral(x.dtype()) ? DType::i64 : x.dtype();  // integer sums widen, as in PyTorch
  Tensor y = run_reduce(ReduceOp::Sum, x, dims, keepdim, dt);
  if (needs_grad({x}))
    record("Sum", {y}, {x}, [shape = x.shape(), keep = keep_shape(x, dims)](const G& g) {
      return G{unreduce(g[0], keep).expand(shape).contiguous()};
    });
  return y;
}

Tensor mean(const Tensor& x, const Shape& dims0, bool keepdim) {
  LOOM_CHECK(is_floating(x.dtype()), "mean: expected a floating point tensor, got ", x.dtype(),
             "; convert with .to(DType::f32)");
  Shape dims = norm_dims(x, dims0, "mean");
  Tensor y = run_reduce(ReduceOp::Mean, x, dims, keepdim, x.dtype());
  if (needs_grad({x})) {
    const double n = double(x.numel()) / double(std::max<int64_t>(1, numel(keep_shape(x, dims))));
    record("Mean", {y}, {x}, [shape = x.shape(), keep = keep_shape(x, dims), n](const G& g) {
      return G{(unreduce(g[0], keep) / n).expand(shape).contiguous()};
    });
  }
  return y;
}

Tensor prod(const Tensor& x, const Shape& dims0, bool keepdim) {
  Shape dims = norm_dims(x, dims0, "prod");
  Tensor y = run_reduce(ReduceOp::Prod, x, dims, keepdim, is_integral(x.dtype()) ? DType::i64 : x.dtype());
  if (needs_grad({x}))
    record("Prod", {y}, {x}, [sx = save(x, "prod"), sy = save(y, "prod"), keep = keep_shape(x, dims)](const G& g) {
      return G{unreduce(g[0], keep) * unreduce(sy.get(), keep) / sx.get()};
    });
  return y;
}

static Tensor amax_amin(const Tensor& x, const Shape& dims0, bool keepdim, bool is_max) {
  const char* name = is_max ? "amax" : "amin";
  LOOM_CHECK(x.numel() > 0, name, ": cannot reduce an empty tensor of shape ", x.shape());
  Shape dims = norm_dims(x, dims0, name);
  Tensor y = run_reduce(is_max ? ReduceOp::Max : ReduceOp::Min, x, dims, keepdim, x.dtype());
  if (needs_grad({x}))
    record(is_max ? "Amax" : "Amin", {y}, {x}, [sx = save(x, name), sy = save(y, name), keep = keep_shape(x, dims)](const G& g) {
      Tensor mask = (sx.get() == unreduce(sy.get(), keep)).to(g[0].dtype());
      Tensor count = sum(mask, [&] { Shape d; for (int64_t i = 0; i < int64_t(keep.size()); ++i) if (keep[size_t(i)] == 1 && sx.get().shape()[size_t(i)] != 1) d.push_back(i); return d; }(), true);
      return G{mask * unreduce(g[0], keep) / count.reshape(keep)};
    });
  return y;
}
Tensor amax(const Tensor& x, const Shape& dims, bool keepdim) { return amax_amin(x, dims, keepdim, true); }
Tensor amin(const Tensor& x, const Shape& dims, bool keepdim) { return amax_amin(x, dims, keepdim, false); }
Tensor max(const Tensor& x) { return amax(x); }
Tensor min(const Tensor& x) { return amin(x); }

static std::pair<Tensor, Tensor> max_min_dim(const Tensor& x, int64_t dim0, bool keepdim, bool is_max) {
  const char* name = is_max ? "max" : "min";
  const int64_t dim = wrap_dim(dim0, x.dim(), name);
  LOOM_CHECK(x.dim() == 0 || x.shape()[size_t(dim)] > 0, name, ": cannot reduce over a zero-size dim of shape ", x.shape());
  Shape keep = keep_shape(x, x.dim() ? Shape{dim} : Shape{});
  Tensor values = make_tensor(keep, x.dtype(), x.device());
  Tensor indices = make_tensor(keep, DType::i64, x.device());
  if (x.dim() == 0) {
    backend_for(x).copy(values, x);
    backend_for(x).fill(indices, 0);
  } else {
    backend_for(x).arg_reduce(is_max, values, indices, x, dim);
  }
  if (!keepdim && x.dim()) {
    values = values.squeeze(dim);
    indices = indices.squeeze(dim);
  }
  if (needs_grad({x}))
    record(is_max ? "Max" : "Min", {values}, {x}, [idx = indices, shape = x.shape(), keep, dim, dt = x.dtype()](const G& g) {
      Tensor gx = zeros(shape, {.dtype = dt, .device = g[0].device()});
      if (shape.empty()) return G{g[0].reshape({})};
      return G{scatter_add(gx, dim, idx.reshape(keep), g[0].reshape(keep))};
    });
  return {values, indices};
}
std::pair<Tensor, Tensor> max(const Tensor& x, int64_t dim, bool keepdim) { return max_min_dim(x, dim, keepdim, true); }
std::pair<Tensor, Tensor> min(const Tensor& x, int64_t dim, bool keepdim) { return max_min_dim(x, dim, keepdim, false); }
Tensor argmax(const Tensor& x, int64_t dim, bool keepdim) { NoGradGuard g; return max(x, dim, keepdim).second; }
Tensor argmin(const Tensor& x, int64_t dim, bool keepdim) { NoGradGuard g; return min(x, dim, keepdim).second; }

// Composite: differentiable through sum/mean/mul, so it needs no backward of its own.
Tensor var(const Tensor& x, const Shape& dims0, int64_t correction, bool keepdim) {
  Shape dims = norm_dims(x, dims0, "var");
  const int64_t n = x.numel() / std::max<int64_t>(1, numel(keep_shape(x, dims)));
  Tensor c = x - mean(x, dims, true);
  return sum(c * c, dims, keepdim) / double(std::max<int64_t>(0, n - correction));
}
Tensor std(const Tensor& x, const Shape& dims, int64_t correction, bool keepdim) {
  return sqrt(var(x, dims, correction, keepdim));
}

Tensor logsumexp(const Tensor& x, const Shape& dims0, bool keepdim) {
  Shape dims = norm_dims(x, dims0, "logsumexp");
  Tensor m;
  {
    NoGradGuard g;
    m = amax(x, dims, true);
    m = where(m.abs() == INFINITY, zeros_like(m), m);  // keeps all -inf rows at -inf, not nan
  }
  Tensor r = log(sum(exp(x - m), dims, true)) + m;
  return keepdim ? r : r.view(drop_shape(x, dims));
}

static Tensor softmax_impl(const Tensor& x0, int64_t dim0, bool log) {
  const char* name = log ? "log_softmax" : "softmax";
  LOOM_CHECK(is_floating(x0.dtype()), name, ": expected a floating point tensor, got ", x0.dtype());
  const int64_t dim = wrap_dim(dim0, x0.dim(), name);
  Tensor x = x0.is_contiguous() ? x0 : x0.detach().contiguous();
  Tensor y = make_tensor(x.shape(), x.dtype(), x.device());
  if (x.dim() == 0) backend_for(x).fill(y, log ? 0.0 : 1.0);
  else backend_for(x).softmax(y, x, dim, log);
  if (needs_grad({x0}))
    record(log ? "LogSoftmax" : "Softmax", {y}, {x0}, [sy = save(y, name), dim, log, scalar = x.dim() == 0](const G& g) {
      if (scalar) return G{zeros_like(g[0])};
      Tensor gc = g[0].contiguous();
      Tensor dx = make_tensor(gc.shape(), gc.dtype(), gc.device());
      backend_for(gc).softmax_backward(dx, gc, sy.get(), dim, log);
      return G{dx};
    });
  return y;
}
Tensor softmax(const Tensor& x, int64_t dim) { return softmax_impl(x, dim, false); }
Tensor log_softmax(const Tensor& x, int64_t dim) { return softmax_impl(x, dim, true); }

Tensor norm(const Tensor& x, double p) {
  if (p == 2.0) return sqrt(sum(x * x));
  if (p == 1.0) return sum(abs(x));
  return pow(sum(pow(abs(x), p)), 1.0 / p);
}

}  // namespace loom
