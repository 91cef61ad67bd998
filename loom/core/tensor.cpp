// Tensor metadata, construction primitives, autograd entry points and printing. The math methods are
// one-line forwards to the functional API (tensor_methods.cpp).
#include "loom/core/tensor.h"

#include <cmath>
#include <iomanip>
#include <sstream>

#include "loom/autograd/function.h"
#include "loom/backend/backend.h"
#include "loom/core/dispatch.h"
#include "loom/ops/creation.h"

namespace loom {

Tensor make_tensor(const Shape& shape, DType dtype, Device device) {
  for (auto d : shape) LOOM_CHECK(d >= 0, "make_tensor: negative dimension in shape ", shape);
  auto impl = std::make_shared<TensorImpl>();
  impl->storage = std::make_shared<Storage>(storage_nbytes(dtype, numel(shape)), device);
  impl->shape = shape;
  impl->strides = contiguous_strides(shape);
  impl->dtype = dtype;
  return Tensor(std::move(impl));
}

void host_access_error(Device d) {
  LOOM_FAIL("data<T>/raw_data: the tensor lives on ", d, ", which host code cannot read; copy it with .to(Device{}) "
            "first, or add a Backend entry that does the work on the device");
}

Tensor make_view(const Tensor& base, const Shape& shape, const Shape& strides, int64_t offset) {
  auto impl = std::make_shared<TensorImpl>();
  impl->storage = base.impl()->storage;
  impl->shape = shape;
  impl->strides = strides;
  impl->offset = offset;
  impl->dtype = base.dtype();
  impl->is_view = true;
  return Tensor(std::move(impl));
}

int64_t Tensor::size(int64_t d) const { return impl_->shape[size_t(wrap_dim(d, dim(), "size"))]; }
int64_t Tensor::stride(int64_t d) const { return impl_->strides[size_t(wrap_dim(d, dim(), "stride"))]; }

bool Tensor::is_contiguous() const {
  int64_t expect = 1;
  for (size_t i = impl_->shape.size(); i-- > 0;) {
    if (impl_->shape[i] == 1) continue;
    if (impl_->strides[i] != expect) return false;
    expect *= impl_->shape[i];
  }
  return true;
}

double Tensor::item() const {
  LOOM_CHECK(defined(), "item: the tensor is undefined");
  LOOM_CHECK(numel() == 1, "item: a Tensor with ", numel(), " elements (shape ", shape(),
             ") cannot be converted to a scalar");
  if (!is_host(device())) return to(Device{}).item();  // one transfer through the device's backend
  return dispatch_storage(dtype(), [&]<class T>() -> double {
    const T v = *static_cast<const T*>(raw_data());
    if constexpr (std::is_same_v<T, bf16> || std::is_same_v<T, f16>) return double(float(v));
    else return double(v);
  });
}

std::vector<double> Tensor::tolist() const {
  Tensor c = to(DType::f64).contiguous();
  if (!is_host(c.device())) c = c.to(Device{});
  const double* p = static_cast<const double*>(c.raw_data());
  return std::vector<double>(p, p + c.numel());
}

Tensor& Tensor::requires_grad_(bool on) {
  LOOM_CHECK(!on || is_floating(dtype()), "requires_grad_: only floating point tensors can require gradients, got ",
             dtype());
  LOOM_CHECK(on || is_leaf(), "requires_grad_: you can only change requires_grad flags of leaf variables");
  impl_->requires_grad = on;
  return *this;
}

void Tensor::retain_grad() const {
  LOOM_CHECK(requires_grad(), "retain_grad: can't retain_grad on a tensor that has requires_grad=False");
  if (is_leaf()) return;
  impl_->retains_grad = true;
  impl_->grad_fn->retained.emplace_back(impl_->output_nr, impl_);
}

void Tensor::backward(const Tensor& gradient, bool retain_graph) const {
  LOOM_CHECK(requires_grad(), "backward: element 0 of tensors does not require grad and does not have a grad_fn");
  Tensor g = gradient;
  if (!g.defined()) {
    LOOM_CHECK(numel() == 1, "backward: grad can be implicitly created only for scalar outputs; got shape ", shape(),
               ". Pass a gradient tensor of that shape.");
    g = ones(shape(), {.dtype = dtype(), .device = device()});
  }
  LOOM_CHECK(g.shape() == shape(), "backward: gradient has shape ", g.shape(), " but the tensor has shape ", shape());
  autograd::run_backward({*this}, {g}, retain_graph);
}

Tensor Tensor::detach() const {
  auto impl = std::make_shared<TensorImpl>();
  impl->storage = impl_->storage;
  impl->shape = impl_->shape;
  impl->strides = impl_->strides;
  impl->offset = impl_->offset;
  impl->dtype = impl_->dtype;
  return Tensor(std::move(impl));
}

Tensor& Tensor::detach_() {
  impl_->grad_fn.reset();
  impl_->requires_grad = false;
  return *this;
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
