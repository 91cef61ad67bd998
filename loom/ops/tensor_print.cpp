// Tensor printing in PyTorch's style, and tolist(). They convert dtypes (an op) and name the grad_fn
// (autograd), so they sit above core.
#include <cmath>
#include <iomanip>
#include <sstream>

#include "loom/autograd/node.h"
#include "loom/core/tensor.h"

namespace loom {

std::vector<double> Tensor::tolist() const {
  Tensor c = to(DType::f64).contiguous();
  if (!is_host(c.device())) c = c.to(Device{});
  const double* p = static_cast<const double*>(c.raw_data());
  return std::vector<double>(p, p + c.numel());
}

// ---- printing, in PyTorch's style
namespace {

struct Fmt {
  bool floating = true, sci = false, int_like = true;
  int width = 1, precision = 4;
};

std::string fmt_value(double v, const Fmt& f) {
  std::ostringstream os;
  if (!f.floating) os << int64_t(v);
  else if (std::isnan(v)) os << "nan";
  else if (std::isinf(v)) os << (v > 0 ? "inf" : "-inf");
  else if (f.sci) os << std::scientific << std::setprecision(f.precision) << v;
  else if (f.int_like) os << std::fixed << std::setprecision(0) << v << '.';
  else os << std::fixed << std::setprecision(f.precision) << v;
  return os.str();
}

void print_rec(std::ostream& os, const std::vector<double>& vals, const Shape& shape, size_t dim, int64_t& pos,
               const Fmt& f, int indent, bool is_bool) {
  if (dim == shape.size()) {
    std::string s = is_bool ? (vals[size_t(pos)] != 0 ? "True" : "False") : fmt_value(vals[size_t(pos)], f);
    os << std::string(size_t(std::max<int>(0, f.width - int(s.size()))), ' ') << s;
    ++pos;
    return;
  }
  os << '[';
  for (int64_t i = 0; i < shape[dim]; ++i) {
    if (i) {
      os << ',';
      if (dim + 1 == shape.size()) os << ' ';
      else os << std::string(shape.size() - dim - 1, '\n') << std::string(size_t(indent + 1), ' ');
    }
    print_rec(os, vals, shape, dim + 1, pos, f, indent + 1, is_bool);
  }
  os << ']';
}

}  // namespace

std::ostream& operator<<(std::ostream& os, const Tensor& t) {
  if (!t.defined()) return os << "tensor(undefined)";
  std::vector<double> vals = t.tolist();
  Fmt f;
  f.floating = is_floating(t.dtype());
  const bool is_bool = t.dtype() == DType::boolean;
  double amax = 0, amin = INFINITY;
  for (double v : vals) {
    if (!std::isfinite(v)) continue;
    if (v != std::floor(v)) f.int_like = false;
    amax = std::max(amax, std::abs(v));
    if (v != 0) amin = std::min(amin, std::abs(v));
  }
  if (f.floating && !f.int_like && (amax >= 1e8 || (amin < 1e-4 && amin > 0) || (amin != INFINITY && amax / amin > 1000 && amax > 1000)))
    f.sci = true;
  if (f.floating && f.int_like && amax >= 1e8) f.sci = true, f.int_like = false;
  for (double v : vals) f.width = std::max<int>(f.width, int(is_bool ? (v != 0 ? 4 : 5) : fmt_value(v, f).size()));
  os << "tensor(";
  int64_t pos = 0;
  if (t.dim() == 0) os << (is_bool ? (vals[0] != 0 ? "True" : "False") : fmt_value(vals[0], Fmt{f.floating, f.sci, f.int_like, 1, f.precision}));
  else print_rec(os, vals, t.shape(), 0, pos, f, 7, is_bool);
  if (t.dtype() != DType::f32 && t.dtype() != DType::i64 && t.dtype() != DType::boolean) os << ", dtype=" << "torch." << dtype_name(t.dtype());
  if (t.grad_fn()) os << ", grad_fn=<" << t.grad_fn()->name() << ">";
  else if (t.requires_grad()) os << ", requires_grad=True";
  return os << ')';
}

std::string to_string(const Tensor& t) {
  std::ostringstream os;
  os << t;
  return os.str();
}

}  // namespace loom
