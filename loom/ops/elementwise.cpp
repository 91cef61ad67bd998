// Elementwise ops: forward through the backend, backward right next to it.
#include "loom/ops/elementwise.h"

#include <cmath>

#include "loom/autograd/function.h"
#include "loom/backend/backend.h"
#include "loom/ops/creation.h"
#include "loom/ops/reduce.h"
#include "loom/ops/shape.h"

namespace loom {

using autograd::needs_grad;
using autograd::record;
using autograd::save;
using G = std::vector<Tensor>;

namespace {

// Converts without recording history (callers handle the gradient's dtype themselves).
Tensor cast(const Tensor& t, DType dt) {
  if (t.dtype() == dt) return t;
  Tensor out = make_tensor(t.shape(), dt, t.device());
  backend_for(t).copy(out, t);
  return out;
}

// Float-only math promotes integer inputs to float32, as PyTorch does.
Tensor float_input(const Tensor& x, const char* op) {
  LOOM_CHECK(x.defined(), op, ": the input tensor is undefined");
  if (is_integral(x.dtype())) return cast(x, DType::f32);
  LOOM_CHECK(x.dtype() == DType::f32 || x.dtype() == DType::f64, op, ": dtype ", x.dtype(),
             " is a storage type; convert with .to(DType::f32) first");
  return x;
}

Tensor run_unary(UnaryOp op, const Tensor& x, double a = 0, double b = 0) {
  Tensor out = make_tensor(x.shape(), x.dtype(), x.device());
  backend_for(x).unary(op, out, x, a, b);
  return out;
}

Tensor run_binary(BinaryOp op, const Tensor& a, const Tensor& b, double s = 0, double t = 0) {
  Tensor out = make_tensor(broadcast_shapes(a.shape(), b.shape(), "binary"), a.dtype(), a.device());
  backend_for(a).binary(op, out, a, b, s, t);
  return out;
}

// A 0-dim tensor for a scalar operand: it takes the tensor's dtype unless a fraction meets an integer tensor.
Tensor scalar_for(double v, const Tensor& t) {
  DType dt = t.dtype();
  if (is_integral(dt) && v != std::floor(v)) dt = DType::f32;
  if (dt == DType::bf16 || dt == DType::f16) dt = DType::f32;
  return full({}, v, {.dtype = dt, .device = t.device()});
}

// Unary op whose gradient is g * f(x or y), recorded with the saved tensor `keep`.
template <class Bw>
Tensor unary_with_grad(const char* name, UnaryOp op, const Tensor& x0, bool save_output, Bw bw, double a = 0, double b = 0) {
  Tensor x = float_input(x0, name);
  Tensor y = run_unary(op, x, a, b);
  if (needs_grad({x0}))
    record(name, {y}, {x0}, [keep = save(save_output ? y : x, name), bw](const G& g) { return G{bw(g[0], keep.get())}; });
  return y;
}

struct BinaryPrep {
  Tensor a, b;
  DType dt;
};
BinaryPrep prep(const Tensor& a, const Tensor& b, const char* op) {
  LOOM_CHECK(a.defined() && b.defined(), op, ": an operand is undefined");
  if (a.device() != b.device()) {  // a 0-dim host tensor joins the other operand's device, as in PyTorch
    if (a.dim() == 0 && is_host(a.device())) return prep(a.to(b.device()), b, op);
    if (b.dim() == 0 && is_host(b.device())) return prep(a, b.to(a.device()), op);
  }
  LOOM_CHECK(a.device() == b.device(), op, ": operands are on different devices (", a.device(), ", ", b.device(), ")");
  broadcast_shapes(a.shape(), b.shape(), op);  // throws with the op name and both shapes
  DType dt = promote(a.dtype(), b.dtype());
  if (dt == DType::bf16 || dt == DType::f16) dt = DType::f32;
  return {cast(a, dt), cast(b, dt), dt};
}

// What a backward closure needs to know about an input, without keeping its memory alive.
struct Meta {
  Shape shape;
  DType dtype;
  bool rg;
};
Meta meta(const Tensor& t) { return {t.shape(), t.dtype(), t.requires_grad()}; }

Tensor grad_for(const Tensor& g, const Meta& input) {
  Tensor r = sum_to(g, input.shape);
  return r.dtype() == input.dtype ? r : cast(r, input.dtype);
}

}  // namespace

Tensor sum_to(const Tensor& g, const Shape& shape) {
  if (g.shape() == shape) return g;
  const int64_t lead = g.dim() - int64_t(shape.size());
  Shape dims;
  for (int64_t d = 0; d < g.dim(); ++d)
    if (d < lead || (shape[size_t(d - lead)] == 1 && g.shape()[size_t(d)] != 1)) dims.push_back(d);
  Tensor r = dims.empty() ? g : sum(g, dims, true);
  return r.reshape(shape);
}

// ---- unary
Tensor neg(const Tensor& x) {
  Tensor y = run_unary(UnaryOp::Neg, x);
  if (needs_grad({x})) record("Neg", {y}, {x}, [](const G& g) { return G{-g[0]}; });
  return y;
}
Tensor abs(const Tensor& x) {
  Tensor y = run_unary(UnaryOp::Abs, x);
  if (needs_grad({x})) record("Abs", {y}, {x}, [sx = save(x, "abs")](const G& g) { return G{g[0] * sign(sx.get())}; });
  return y;
}
Tensor exp(const Tensor& x) {
  return unary_with_grad("Exp", UnaryOp::Exp, x, true, [](const Tensor& g, const Tensor& y) { return g * y; });
}
Tensor log(const Tensor& x) {
  return unary_with_grad("Log", UnaryOp::Log, x, false, [](const Tensor& g, const Tensor& x) { return g / x; });
}
Tensor log1p(const Tensor& x) {
  return unary_with_grad("Log1p", UnaryOp::Log1p, x, false, [](const Tensor& g, const Tensor& x) { return g / (x + 1.0); });
}
Tensor sqrt(const Tensor& x) {
  return unary_with_grad("Sqrt", UnaryOp::Sqrt, x, true, [](const Tensor& g, const Tensor& y) { return g / (y * 2.0); });
}
Tensor rsqrt(const Tensor& x) {
  return unary_with_grad("Rsqrt", UnaryOp::Rsqrt, x, true,
                         [](const Tensor& g, const Tensor& y) { return g * y * y * y * -0.5; });
}
Tensor sin(const Tensor& x) {
  return unary_with_grad("Sin", UnaryOp::Sin, x, false, [](const Tensor& g, const Tensor& x) { return g * cos(x); });
}
Tensor cos(const Tensor& x) {
  return unary_with_grad("Cos", UnaryOp::Cos, x, false, [](const Tensor& g, const Tensor& x) { return -(g * sin(x)); });
}
Tensor tanh(const Tensor& x) {
  return unary_with_grad("Tanh", UnaryOp::Tanh, x, true,
                         [](const Tensor& g, const Tensor& y) { return run_binary(BinaryOp::TanhBackwardOut, g, y); });
}
Tensor sigmoid(const Tensor& x) {
  return unary_with_grad("Sigmoid", UnaryOp::Sigmoid, x, true,
                         [](const Tensor& g, const Tensor& y) { return run_binary(BinaryOp::SigmoidBackwardOut, g, y); });
}
Tensor relu(const Tensor& x) {
  // Saves the output (y > 0 exactly where x > 0) so relu_ can overwrite its input.
  LOOM_CHECK(x.defined(), "relu: the input tensor is undefined");
  Tensor y = run_unary(UnaryOp::Relu, x);
  if (needs_grad({x}))
    record("Relu", {y}, {x}, [sy = save(y, "relu")](const G& g) { return G{run_binary(BinaryOp::ReluBackward, g[0], sy.get())}; });
  return y;
}
Tensor gelu(const Tensor& x, const std::string& approximate) {
  LOOM_CHECK(approximate == "none" || approximate == "tanh", "gelu: approximate must be 'none' or 'tanh', got '",
             approximate, "'");
  const bool t = approximate == "tanh";
  return unary_with_grad(t ? "GeluTanh" : "Gelu", t ? UnaryOp::GeluTanh : UnaryOp::Gelu, x, false,
                         [t](const Tensor& g, const Tensor& x) {
                           return run_binary(t ? BinaryOp::GeluTanhBackward : BinaryOp::GeluBackward, g, x);
                         });
}
Tensor silu(const Tensor& x) {
  return unary_with_grad("Silu", UnaryOp::Silu, x, false,
                         [](const Tensor& g, const Tensor& x) { return run_binary(BinaryOp::SiluBackward, g, x); });
}
Tensor leaky_relu(const Tensor& x, double slope) {
  return unary_with_grad("LeakyRelu", UnaryOp::LeakyRelu, x, false,
                         [slope](const Tensor& g, const Tensor& x) { return run_binary(BinaryOp::LeakyReluBackward, g, x, slope); },
                         slope);
}
Tensor elu(const Tensor& x, double alpha) {
  return unary_with_grad("Elu", UnaryOp::Elu, x, false,
                         [alpha](const Tensor& g, const Tensor& x) { return run_binary(BinaryOp::EluBackward, g, x, alpha); },
                         alpha);
}
Tensor softplus(const Tensor& x, double beta, double threshold) {
  return unary_with_grad("Softplus", UnaryOp::Softplus, x, false,
                         [beta, threshold](const Tensor& g, const Tensor& x) {
                           return run_binary(BinaryOp::SoftplusBackward, g, x, beta, threshold);
                         },
                         beta, threshold);
}
Tensor square(const Tensor& x) {
  Tensor y = run_unary(UnaryOp::Square, x);
  if (needs_grad({x})) record("Square", {y}, {x}, [sx = save(x, "square")](const G& g) { return G{g[0] * sx.get() * 2.0}; });
  return y;
}
Tensor sign(const Tensor& x) { return run_unary(UnaryOp::Sign, x); }
Tensor erf(const Tensor& x) {
  return unary_with_grad("Erf", UnaryOp::Erf, x, false, [](const Tensor& g, const Tensor& x) {
    return g * exp(-(x * x)) * 1.1283791670955126;  // 2/sqrt(pi)
  });
}
Tensor pow(const Tensor& x0, double e) {
  Tensor x = float_input(x0, "pow");
  Tensor y = run_unary(UnaryOp::PowScalar, x, e);
  if (needs_grad({x0}))
    record("Pow", {y}, {x0}, [sx = save(x, "pow"), e](const G& g) {
      if (e == 0.0) return G{zeros_like(g[0])};
      return G{g[0] * pow(sx.get(), e - 1.0) * e};
    });
  return y;
}
Tensor clamp(const Tensor& x, std::optional<double> lo, std::optional<double> hi) {
  LOOM_CHECK(lo || hi, "clamp: at least one of min and max must be given");
  const double a = lo.value_or(-INFINITY), b = hi.value_or(INFINITY);
  Tensor y = run_unary(UnaryOp::Clamp, x, a, b);
  if (needs_grad({x}))
    record("Clamp", {y}, {x}, [sx = save(x, "clamp"), a, b](const G& g) {
      const Tensor& xx = sx.get();
      return G{where(logical_and(xx >= a, xx <= b), g[0], 0.0)};
    });
  return y;
}
Tensor logical_not(const Tensor& x) {
  Tensor out = make_tensor(x.shape(), DType::boolean, x.device());
  backend_for(x).unary(UnaryOp::LogicalNot, out, x, 0, 0);
  return out;
}

// ---- binary
Tensor add(const Tensor& a0, const Tensor& b0, double alpha) {
  auto [a, b, dt] = prep(a0, b0, "add");
  Tensor y = alpha == 1.0 ? run_binary(BinaryOp::Add, a, b) : run_binary(BinaryOp::AddScaled, a, b, alpha);
  if (needs_grad({a0, b0}))
    record("Add", {y}, {a0, b0}, [a0m = autograd::OutputMeta{a0.shape(), a0.dtype()}, b0m = autograd::OutputMeta{b0.shape(), b0.dtype()}, alpha](const G& g) {
      Tensor ga = sum_to(g[0], a0m.shape), gb = sum_to(alpha == 1.0 ? g[0] : g[0] * alpha, b0m.shape);
      return G{ga.dtype() == a0m.dtype ? ga : cast(ga, a0m.dtype), gb.dtype() == b0m.dtype ? gb : cast(gb, b0m.dtype)};
    });
  return y;
}
Tensor sub(const Tensor& a, const Tensor& b, double alpha) { return add(a, b, -alpha); }

Tensor mul(const Tensor& a0, const Tensor& b0) {
  auto [a, b, dt] = prep(a0, b0, "mul");
  Tensor y = run_binary(BinaryOp::Mul, a, b);
  if (needs_grad({a0, b0})) {
    const bool ga = a0.requires_grad(), gb = b0.requires_grad();
    record("Mul", {y}, {a0, b0}, [sa = save(gb ? a : Tensor(), "mul"), sb = save(ga ? b : Tensor(), "mul"), ma = meta(a0), mb = meta(b0), ga, gb](const G& g) {
      return G{ga ? grad_for(g[0] * sb.get(), ma) : Tensor(), gb ? grad_for(g[0] * sa.get(), mb) : Tensor()};
    });
  }
  return y;
}

Tensor div(const Tensor& a0, const Tensor& b0) {
  auto [a, b, dt] = prep(a0, b0, "div");
  if (is_integral(dt)) { a = cast(a, DType::f32); b = cast(b, DType::f32); }  // true division, as torch.div
  Tensor y = run_binary(BinaryOp::Div, a, b);
  if (needs_grad({a0, b0}))
    record("Div", {y}, {a0, b0}, [sb = save(b, "div"), sy = save(y, "div"), ma = meta(a0), mb = meta(b0)](const G& g) {
      Tensor ga = ma.rg ? grad_for(g[0] / sb.get(), ma) : Tensor();
      Tensor gb = mb.rg ? grad_for(-(g[0] * sy.get() / sb.get()), mb) : Tensor();
      return G{ga, gb};
    });
  return y;
}

Tensor pow(const Tensor& a0, const Tensor& b0) {
  auto [a, b, dt] = prep(a0, b0, "pow");
  LOOM_CHECK(is_floating(dt), "pow: tensor exponents need float tensors, got ", dt);
  Tensor y = run_binary(BinaryOp::Pow, a, b);
  if (needs_grad({a0, b0}))
    record("Pow", {y}, {a0, b0}, [sa = save(a, "pow"), sb = save(b, "pow"), sy = save(y, "pow"), ma = meta(a0), mb = meta(b0)](const G& g) {
      const Tensor &x = sa.get(), &e = sb.get();
      Tensor ga = ma.rg ? grad_for(where(e == 0.0, 0.0 * g[0], g[0] * e * pow(x, e - 1.0)), ma) : Tensor();
      // d/de x^e = x^e log x; PyTorch defines it as 0 where x == 0 and e >= 0.
      Tensor gb = mb.rg ? grad_for(where(logical_and(x == 0.0, e >= 0.0), 0.0 * g[0], g[0] * sy.get() * log(x)), mb) : Tensor();
      return G{ga, gb};
    });
  return y;
}

static Tensor max_min(const Tensor& a0, const Tensor& b0, bool is_max) {
  auto [a, b, dt] = prep(a0, b0, is_max ? "maximum" : "minimum");
  Tensor y = run_binary(is_max ? BinaryOp::Maximum : BinaryOp::Minimum, a, b);
  if (needs_grad({a0, b0}))
    record(is_max ? "Maximum" : "Minimum", {y}, {a0, b0}, [sa = save(a), sb = save(b), ma = meta(a0), mb = meta(b0), is_max](const G& g) {
      const Tensor &x = sa.get(), &z = sb.get();
      Tensor half = where(x == z, g[0] * 0.5, g[0]);  // ties split the gradient, as PyTorch does
      Tensor ga = where(is_max ? x < z : x > z, 0.0 * g[0], half);
      Tensor gb = where(is_max ? x > z : x < z, 0.0 * g[0], half);
      return G{grad_for(ga, ma), grad_for(gb, mb)};
    });
  return y;
}
Tensor maximum(const Tensor& a, const Tensor& b) { return max_min(a, b, true); }
Tensor minimum(const Tensor& a, const Tensor& b) { return max_min(a, b, false); }

static Tensor compare(BinaryOp op, const Tensor& a0, const Tensor& b0, const char* name) {
  auto [a, b, dt] = prep(a0, b0, name);
  Tensor out = make_tensor(broadcast_shapes(a.shape(), b.shape(), name), DType::boolean, a.device());
  backend_for(a).binary(op, out, a, b, 0, 0);
  return out;
}
Tensor eq(const Tensor& a, const Tensor& b) { return compare(BinaryOp::Eq, a, b, "eq"); }
Tensor ne(const Tensor& a, const Tensor& b) { return compare(BinaryOp::Ne, a, b, "ne"); }
Tensor lt(const Tensor& a, const Tensor& b) { return compare(BinaryOp::Lt, a, b, "lt"); }
Tensor le(const Tensor& a, const Tensor& b) { return compare(BinaryOp::Le, a, b, "le"); }
Tensor gt(const Tensor& a, const Tensor& b) { return compare(BinaryOp::Gt, a, b, "gt"); }
Tensor ge(const Tensor& a, const Tensor& b) { return compare(BinaryOp::Ge, a, b, "ge"); }
Tensor logical_and(const Tensor& a, const Tensor& b) { return compare(BinaryOp::LogicalAnd, a, b, "logical_and"); }
Tensor logical_or(const Tensor& a, const Tensor& b) { return compare(BinaryOp::LogicalOr, a, b, "logical_or"); }

Tensor where(const Tensor& cond, const Tensor& a0, const Tensor& b0) {
  LOOM_CHECK(cond.dtype() == DType::boolean, "where: condition must be a bool tensor, got ", cond.dtype());
  auto [a, b, dt] = prep(a0, b0, "where");
  Shape shape = broadcast_shapes(cond.shape(), broadcast_shapes(a.shape(), b.shape(), "where"), "where");
  Tensor y = make_tensor(shape, dt, a.device());
  backend_for(a).where(y, cond, a, b);
  if (needs_grad({a0, b0}))
    record("Where", {y}, {a0, b0}, [c = cond.detach(), ma = meta(a0), mb = meta(b0)](const G& g) {
      Tensor z = zeros({}, {.dtype = g[0].dtype(), .device = g[0].device()});
      return G{ma.rg ? grad_for(where(c, g[0], z), ma) : Tensor(),
               mb.rg ? grad_for(where(c, z, g[0]), mb) : Tensor()};
    });
  return y;
}
Tensor where(const Tensor& cond, const Tensor& a, double b) { return where(cond, a, scalar_for(b, a)); }

Tensor masked_fill(const Tensor& x, const Tensor& mask, double value) {
  LOOM_CHECK(mask.dtype() == DType::boolean, "masked_fill: mask must be a bool tensor, got ", mask.dtype());
  Shape s = broadcast_shapes(x.shape(), mask.shape(), "masked_fill");
  LOOM_CHECK(s == x.shape(), "masked_fill: mask of shape ", mask.shape(), " does not broadcast to the input's shape ", x.shape());
  return where(mask, scalar_for(value, x).to(x.dtype()), x);
}

bool allclose(const Tensor& a, const Tensor& b, double rtol, double atol) {
  if (a.shape() != b.shape()) return false;
  auto va = a.tolist(), vb = b.tolist();
  for (size_t i = 0; i < va.size(); ++i)
    if (!(std::abs(va[i] - vb[i]) <= atol + rtol * std::abs(vb[i]))) return false;
  return true;
}
bool equal(const Tensor& a, const Tensor& b) { return a.shape() == b.shape() && a.tolist() == b.tolist(); }

// ---- operators
Tensor operator-(const Tensor& a) { return neg(a); }
Tensor operator+(const Tensor& a, const Tensor& b) { return add(a, b); }
Tensor operator-(const Tensor& a, const Tensor& b) { return sub(a, b); }
Tensor operator*(const Tensor& a, const Tensor& b) { return mul(a, b); }
Tensor operator/(const Tensor& a, const Tensor& b) { return div(a, b); }
Tensor operator+(const Tensor& a, double b) { return add(a, scalar_for(b, a)); }
Tensor operator-(const Tensor& a, double b) { return sub(a, scalar_for(b, a)); }
Tensor operator*(const Tensor& a, double b) { return mul(a, scalar_for(b, a)); }
Tensor operator/(const Tensor& a, double b) { return div(a, scalar_for(b, a)); }
Tensor operator+(double a, const Tensor& b) { return add(scalar_for(a, b), b); }
Tensor operator-(double a, const Tensor& b) { return sub(scalar_for(a, b), b); }
Tensor operator*(double a, const Tensor& b) { return mul(scalar_for(a, b), b); }
Tensor operator/(double a, const Tensor& b) { return div(scalar_for(a, b), b); }
Tensor operator==(const Tensor& a, const Tensor& b) { return eq(a, b); }
Tensor operator!=(const Tensor& a, const Tensor& b) { return ne(a, b); }
Tensor operator<(const Tensor& a, const Tensor& b) { return lt(a, b); }
Tensor operator<=(const Tensor& a, const Tensor& b) { return le(a, b); }
Tensor operator>(const Tensor& a, const Tensor& b) { return gt(a, b); }
Tensor operator>=(const Tensor& a, const Tensor& b) { return ge(a, b); }
Tensor operator==(const Tensor& a, double b) { return eq(a, scalar_for(b, a)); }
Tensor operator!=(const Tensor& a, double b) { return ne(a, scalar_for(b, a)); }
Tensor operator<(const Tensor& a, double b) { return lt(a, scalar_for(b, a)); }
Tensor operator<=(const Tensor& a, double b) { return le(a, scalar_for(b, a)); }
Tensor operator>(const Tensor& a, double b) { return gt(a, scalar_for(b, a)); }
Tensor operator>=(const Tensor& a, double b) { return ge(a, scalar_for(b, a)); }

}  // namespace loom
