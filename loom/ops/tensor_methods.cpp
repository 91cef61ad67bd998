// Tensor's method API: one-line forwards to the functional ops, plus the in-place variants and the
// autograd entry points (backward, retain_grad). Declared in core/tensor.h, defined here above ops so
// that core includes nothing above itself.
// In-place ops compute out of place, write the result into this tensor's memory and, under autograd,
// re-point this tensor at the new graph node (what PyTorch calls rebasing history).
#include "loom/core/dispatch.h"
#include "loom/autograd/function.h"
#include "loom/backend/backend.h"
#include "loom/ops/creation.h"
#include "loom/ops/elementwise.h"
#include "loom/ops/index.h"
#include "loom/ops/linalg.h"
#include "loom/ops/reduce.h"
#include "loom/ops/shape.h"

namespace loom {

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

// item() lives above core: a device tensor is copied to the host first, through to() (an op).
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

Tensor Tensor::to(DType t) const {
  if (dtype() == t) return *this;
  Tensor out = make_tensor(shape(), t, device());
  backend_for(device()).copy(out, *this);
  if (is_floating(t) && autograd::needs_grad({*this}))
    autograd::record("ToCopy", {out}, {*this}, [src = dtype()](const std::vector<Tensor>& g) { return std::vector<Tensor>{g[0].to(src)}; });
  return out;
}
// The backend of the non-host side does the transfer (host <-> device); two non-host devices go through the host.
Tensor Tensor::to(Device d) const {
  LOOM_CHECK(defined(), "to: the tensor is undefined");
  if (device() == d) return *this;
  if (!is_host(device()) && !is_host(d)) return to(Device{}).to(d);
  Backend& be = backend_for(is_host(d) ? device() : d);  // a clear error for a device with no backend
  Tensor out = make_tensor(shape(), dtype(), d);
  be.copy(out, *this);
  if (autograd::needs_grad({*this}))
    autograd::record("ToDevice", {out}, {*this},
                     [src = device()](const std::vector<Tensor>& g) { return std::vector<Tensor>{g[0].to(src)}; });
  return out;
}
Tensor Tensor::contiguous() const { return loom::contiguous(*this); }
Tensor Tensor::clone() const {
  Tensor out = make_tensor(shape(), dtype(), device());
  backend_for(device()).copy(out, *this);
  if (autograd::needs_grad({*this}))
    autograd::record("Clone", {out}, {*this}, [](const std::vector<Tensor>& g) { return std::vector<Tensor>{g[0]}; });
  return out;
}

Tensor Tensor::view(const Shape& s) const { return loom::view(*this, s); }
Tensor Tensor::reshape(const Shape& s) const { return loom::reshape(*this, s); }
Tensor Tensor::permute(const Shape& d) const { return loom::permute(*this, d); }
Tensor Tensor::transpose(int64_t a, int64_t b) const { return loom::transpose(*this, a, b); }
Tensor Tensor::t() const {
  LOOM_CHECK(dim() <= 2, "t: expects a tensor with <= 2 dimensions, but got shape ", shape());
  return dim() < 2 ? *this : loom::transpose(*this, 0, 1);
}
Tensor Tensor::narrow(int64_t d, int64_t s, int64_t l) const { return loom::narrow(*this, d, s, l); }
Tensor Tensor::slice(int64_t d, int64_t s, int64_t e, int64_t st) const { return loom::slice(*this, d, s, e, st); }
Tensor Tensor::select(int64_t d, int64_t i) const { return loom::select(*this, d, i); }
Tensor Tensor::expand(const Shape& s) const { return loom::expand(*this, s); }
Tensor Tensor::squeeze() const { return loom::squeeze(*this); }
Tensor Tensor::squeeze(int64_t d) const { return loom::squeeze(*this, d); }
Tensor Tensor::unsqueeze(int64_t d) const { return loom::unsqueeze(*this, d); }
Tensor Tensor::flatten(int64_t s, int64_t e) const { return loom::flatten(*this, s, e); }
std::vector<Tensor> Tensor::split(int64_t s, int64_t d) const { return loom::split(*this, s, d); }
std::vector<Tensor> Tensor::chunk(int64_t c, int64_t d) const { return loom::chunk(*this, c, d); }

Tensor Tensor::neg() const { return loom::neg(*this); }
Tensor Tensor::abs() const { return loom::abs(*this); }
Tensor Tensor::exp() const { return loom::exp(*this); }
Tensor Tensor::log() const { return loom::log(*this); }
Tensor Tensor::log1p() const { return loom::log1p(*this); }
Tensor Tensor::sqrt() const { return loom::sqrt(*this); }
Tensor Tensor::rsqrt() const { return loom::rsqrt(*this); }
Tensor Tensor::pow(double e) const { return loom::pow(*this, e); }
Tensor Tensor::pow(const Tensor& e) const { return loom::pow(*this, e); }
Tensor Tensor::sin() const { return loom::sin(*this); }
Tensor Tensor::cos() const { return loom::cos(*this); }
Tensor Tensor::tanh() const { return loom::tanh(*this); }
Tensor Tensor::sigmoid() const { return loom::sigmoid(*this); }
Tensor Tensor::relu() const { return loom::relu(*this); }
Tensor Tensor::gelu(const std::string& a) const { return loom::gelu(*this, a); }
Tensor Tensor::silu() const { return loom::silu(*this); }
Tensor Tensor::clamp(std::optional<double> lo, std::optional<double> hi) const { return loom::clamp(*this, lo, hi); }
Tensor Tensor::sum() const { return loom::sum(*this); }
Tensor Tensor::sum(const Shape& d, bool k) const { return loom::sum(*this, d, k); }
Tensor Tensor::mean() const { return loom::mean(*this); }
Tensor Tensor::mean(const Shape& d, bool k) const { return loom::mean(*this, d, k); }
Tensor Tensor::max() const { return loom::max(*this); }
Tensor Tensor::min() const { return loom::min(*this); }
std::pair<Tensor, Tensor> Tensor::max(int64_t d, bool k) const { return loom::max(*this, d, k); }
std::pair<Tensor, Tensor> Tensor::min(int64_t d, bool k) const { return loom::min(*this, d, k); }
Tensor Tensor::argmax(int64_t d, bool k) const { return loom::argmax(*this, d, k); }
Tensor Tensor::argmin(int64_t d, bool k) const { return loom::argmin(*this, d, k); }
Tensor Tensor::var(const Shape& d, int64_t c, bool k) const { return loom::var(*this, d, c, k); }
Tensor Tensor::std(const Shape& d, int64_t c, bool k) const { return loom::std(*this, d, c, k); }
Tensor Tensor::logsumexp(const Shape& d, bool k) const { return loom::logsumexp(*this, d, k); }
Tensor Tensor::softmax(int64_t d) const { return loom::softmax(*this, d); }
Tensor Tensor::log_softmax(int64_t d) const { return loom::log_softmax(*this, d); }
Tensor Tensor::matmul(const Tensor& o) const { return loom::matmul(*this, o); }
Tensor Tensor::masked_fill(const Tensor& m, double v) const { return loom::masked_fill(*this, m, v); }
Tensor Tensor::index_select(int64_t d, const Tensor& i) const { return loom::index_select(*this, d, i); }
Tensor Tensor::gather(int64_t d, const Tensor& i) const { return loom::gather(*this, d, i); }

// ---- in place
namespace {

void check_inplace(const Tensor& self, const char* op) {
  LOOM_CHECK(self.defined(), op, ": the tensor is undefined");
  if (!grad_enabled()) return;
  LOOM_CHECK(!(self.is_leaf() && self.requires_grad()), op,
             ": a leaf Variable that requires grad is being used in an in-place operation. Wrap it in a NoGradGuard "
             "or use the out-of-place op.");
  LOOM_CHECK(!(self.impl()->is_view && self.requires_grad()), op,
             ": in-place ops on a view of a tensor that requires grad are not supported; use the out-of-place op");
}

// Writes `result` into self and takes over its history.
Tensor& assign(Tensor& self, const Tensor& result, const char* op) {
  LOOM_CHECK(result.shape() == self.shape(), op, ": result of shape ", result.shape(),
             " cannot be written in place into a tensor of shape ", self.shape());
  backend_for(self.device()).copy(self, result);
  self.bump_version();
  if (grad_enabled() && result.requires_grad()) {
    self.impl()->grad_fn = result.grad_fn();
    self.impl()->output_nr = result.impl()->output_nr;
    self.impl()->requires_grad = true;
  }
  return self;
}

// The no-grad fast path: a kernel writing straight into self (optimizer updates, initialisers).
bool fast(const Tensor& self, std::initializer_list<Tensor> others) {
  return !autograd::needs_grad({self}) && !autograd::needs_grad(others);
}

}  // namespace

Tensor& Tensor::zero_() { return fill_(0.0); }
Tensor& Tensor::fill_(double v) {
  check_inplace(*this, "fill_");
  backend_for(device()).fill(*this, v);
  bump_version();
  if (grad_enabled() && requires_grad() && !is_leaf()) impl_->grad_fn.reset(), impl_->requires_grad = false;
  return *this;
}
Tensor& Tensor::add_(const Tensor& o, double alpha) {
  check_inplace(*this, "add_");
  if (fast(*this, {o}) && o.dtype() == dtype() && is_floating(dtype())) {
    broadcast_shapes(shape(), o.shape(), "add_");
    backend_for(device()).binary(alpha == 1.0 ? BinaryOp::Add : BinaryOp::AddScaled, *this, *this, o, alpha, 0);
    bump_version();
    return *this;
  }
  return assign(*this, loom::add(*this, o, alpha), "add_");
}
Tensor& Tensor::add_(double v) {
  check_inplace(*this, "add_");
  if (fast(*this, {})) { backend_for(device()).unary(UnaryOp::AddScalar, *this, *this, v, 0); bump_version(); return *this; }
  return assign(*this, *this + v, "add_");
}
Tensor& Tensor::sub_(const Tensor& o, double alpha) { return add_(o, -alpha); }
Tensor& Tensor::mul_(const Tensor& o) {
  check_inplace(*this, "mul_");
  if (fast(*this, {o}) && o.dtype() == dtype()) {
    broadcast_shapes(shape(), o.shape(), "mul_");
    backend_for(device()).binary(BinaryOp::Mul, *this, *this, o, 0, 0);
    bump_version();
    return *this;
  }
  return assign(*this, loom::mul(*this, o), "mul_");
}
Tensor& Tensor::mul_(double v) {
  check_inplace(*this, "mul_");
  if (fast(*this, {})) { backend_for(device()).unary(UnaryOp::MulScalar, *this, *this, v, 0); bump_version(); return *this; }
  return assign(*this, *this * v, "mul_");
}
Tensor& Tensor::div_(const Tensor& o) {
  check_inplace(*this, "div_");
  if (fast(*this, {o}) && o.dtype() == dtype() && is_floating(dtype())) {
    backend_for(device()).binary(BinaryOp::Div, *this, *this, o, 0, 0);
    bump_version();
    return *this;
  }
  return assign(*this, loom::div(*this, o), "div_");
}
Tensor& Tensor::div_(double v) { return mul_(1.0 / v); }
Tensor& Tensor::clamp_(std::optional<double> lo, std::optional<double> hi) {
  check_inplace(*this, "clamp_");
  return assign(*this, loom::clamp(*this, lo, hi), "clamp_");
}
Tensor& Tensor::relu_() { check_inplace(*this, "relu_"); return assign(*this, loom::relu(*this), "relu_"); }
Tensor& Tensor::exp_() { check_inplace(*this, "exp_"); return assign(*this, loom::exp(*this), "exp_"); }
Tensor& Tensor::sqrt_() { check_inplace(*this, "sqrt_"); return assign(*this, loom::sqrt(*this), "sqrt_"); }
Tensor& Tensor::masked_fill_(const Tensor& m, double v) {
  check_inplace(*this, "masked_fill_");
  return assign(*this, loom::masked_fill(*this, m, v), "masked_fill_");
}
Tensor& Tensor::uniform_(double lo, double hi) {
  check_inplace(*this, "uniform_");
  Tensor tmp = make_tensor(shape(), dtype(), device());
  backend_for(device()).uniform(tmp, lo, hi, default_generator());
  backend_for(device()).copy(*this, tmp);
  bump_version();
  return *this;
}
Tensor& Tensor::normal_(double mean, double std) {
  check_inplace(*this, "normal_");
  Tensor tmp = make_tensor(shape(), dtype(), device());
  backend_for(device()).normal(tmp, mean, std, default_generator());
  backend_for(device()).copy(*this, tmp);
  bump_version();
  return *this;
}

Tensor& Tensor::copy_(const Tensor& src) {
  check_inplace(*this, "copy_");
  broadcast_shapes(shape(), src.shape(), "copy_");
  if (fast(*this, {src})) {
    backend_for(device()).copy(*this, src);
    bump_version();
    return *this;
  }
  Tensor s = src.dtype() == dtype() ? src : src.to(dtype());
  return assign(*this, loom::expand(s, shape()).clone(), "copy_");
}

}  // namespace loom
