// Tensor: a cheap, reference-counted handle (like torch::Tensor). Copies share the same data.
//   Tensor x = loom::randn({2, 3}, {.requires_grad = true});
//   Tensor y = (x * 2).relu().sum();  y.backward();  x.grad();
// Methods are thin wrappers over the functional API in loom/ops/*.h.
#pragma once
#include <memory>
#include <optional>
#include <ostream>
#include <string>
#include <utility>
#include <vector>

#include "loom/core/device.h"
#include "loom/core/dtype.h"
#include "loom/core/error.h"
#include "loom/core/host_access.h"
#include "loom/core/shape.h"
#include "loom/core/tensor_impl.h"

namespace loom {

namespace autograd { struct Node; }
namespace detail { [[noreturn]] void throw_undefined_tensor(); }

[[noreturn]] void host_access_error(Device d);

// Creation options, filled with designated initializers: zeros({2, 3}, {.dtype = DType::f64}).
struct Options {
  DType dtype = DType::f32;
  Device device = {};
  bool requires_grad = false;
};

class Tensor {
 public:
  Tensor() = default;
  explicit Tensor(std::shared_ptr<TensorImpl> impl) : impl_(std::move(impl)) {}

  bool defined() const { return impl_ != nullptr; }
  TensorImpl* impl() const { return impl_.get(); }
  const std::shared_ptr<TensorImpl>& impl_ptr() const { return impl_; }
  bool is_same(const Tensor& o) const { return impl_ == o.impl_; }

  // ---- metadata
  const Shape& shape() const { return checked().shape; }
  const Shape& sizes() const { return checked().shape; }
  int64_t size(int64_t d) const;
  const Shape& strides() const { return checked().strides; }
  int64_t stride(int64_t d) const;
  int64_t offset() const { return checked().offset; }
  int64_t dim() const { return int64_t(checked().shape.size()); }
  int64_t numel() const { return loom::numel(checked().shape); }
  DType dtype() const { return checked().dtype; }
  Device device() const { return checked().storage->device; }
  bool is_contiguous() const;
  void* raw_data() const { return checked().data_ptr(); }
  // Host access: throws for a tensor on a non-host device unless a backend entry is running (host_access.h).
  // raw_data() is the device pointer the Backend entries themselves take.
  template <class T> T* data() const {
    LOOM_CHECK(dtype_of<T>::value == dtype(), "data<T>: tensor has dtype ", dtype(), ", asked for ",
               dtype_of<T>::value);
    if (!is_host(device()) && !host_access_open()) host_access_error(device());
    return static_cast<T*>(raw_data());
  }
  double item() const;  // the value of a one-element tensor, as double
  template <class T> T item() const { return static_cast<T>(item()); }
  std::vector<double> tolist() const;  // all values in row-major order, as double (tests, printing)
  uint64_t version() const { return checked().storage->version; }
  void bump_version() const { ++checked().storage->version; }

  // ---- autograd
  bool requires_grad() const { return checked().requires_grad; }
  Tensor& requires_grad_(bool on = true);
  Tensor grad() const { return checked().grad ? Tensor(impl_->grad) : Tensor(); }
  void set_grad(const Tensor& g) { checked().grad = g.impl_; }
  bool is_leaf() const { return checked().grad_fn == nullptr; }
  const std::shared_ptr<autograd::Node>& grad_fn() const { return checked().grad_fn; }
  void retain_grad() const;
  void backward(const Tensor& gradient = {}, bool retain_graph = false) const;
  Tensor detach() const;  // shares storage, no history
  Tensor& detach_();

  // ---- copies and conversion
  Tensor to(DType t) const;
  // A copy on device d (this tensor itself when already there), differentiable. An unknown device throws.
  Tensor to(Device d) const;
  Tensor contiguous() const;
  Tensor clone() const;
  Tensor& copy_(const Tensor& src);  // broadcasting, dtype-converting, autograd-aware copy
  Tensor float_() const { return to(DType::f32); }
  Tensor double_() const { return to(DType::f64); }

  // ---- views (share storage)
  Tensor view(const Shape& s) const;
  Tensor reshape(const Shape& s) const;
  Tensor permute(const Shape& dims) const;
  Tensor transpose(int64_t d0, int64_t d1) const;
  Tensor t() const;
  Tensor narrow(int64_t dim, int64_t start, int64_t length) const;
  Tensor slice(int64_t dim, int64_t start, int64_t end, int64_t step = 1) const;
  Tensor select(int64_t dim, int64_t index) const;
  Tensor operator[](int64_t i) const { return select(0, i); }
  Tensor expand(const Shape& s) const;
  Tensor expand_as(const Tensor& o) const { return expand(o.shape()); }
  Tensor squeeze() const;
  Tensor squeeze(int64_t dim) const;
  Tensor unsqueeze(int64_t dim) const;
  Tensor flatten(int64_t start = 0, int64_t end = -1) const;
  Tensor view_as(const Tensor& o) const { return view(o.shape()); }
  std::vector<Tensor> split(int64_t size, int64_t dim = 0) const;
  std::vector<Tensor> chunk(int64_t chunks, int64_t dim = 0) const;

  // ---- math (see loom/ops/*.h for the functional forms)
  Tensor neg() const;
  Tensor abs() const;
  Tensor exp() const;
  Tensor log() const;
  Tensor log1p() const;
  Tensor sqrt() const;
  Tensor rsqrt() const;
  Tensor pow(double e) const;
  Tensor pow(const Tensor& e) const;
  Tensor sin() const;
  Tensor cos() const;
  Tensor tanh() const;
  Tensor sigmoid() const;
  Tensor relu() const;
  Tensor gelu(const std::string& approximate = "none") const;
  Tensor silu() const;
  Tensor clamp(std::optional<double> lo, std::optional<double> hi) const;
  Tensor sum() const;
  Tensor sum(const Shape& dims, bool keepdim = false) const;
  Tensor mean() const;
  Tensor mean(const Shape& dims, bool keepdim = false) const;
  Tensor max() const;
  Tensor min() const;
  std::pair<Tensor, Tensor> max(int64_t dim, bool keepdim = false) const;
  std::pair<Tensor, Tensor> min(int64_t dim, bool keepdim = false) const;
  Tensor argmax(int64_t dim, bool keepdim = false) const;
  Tensor argmin(int64_t dim, bool keepdim = false) const;
  Tensor var(const Shape& dims, int64_t correction = 1, bool keepdim = false) const;
  Tensor std(const Shape& dims, int64_t correction = 1, bool keepdim = false) const;
  Tensor logsumexp(const Shape& dims, bool keepdim = false) const;
  Tensor softmax(int64_t dim) const;
  Tensor log_softmax(int64_t dim) const;
  Tensor matmul(const Tensor& o) const;
  Tensor masked_fill(const Tensor& mask, double value) const;
  Tensor index_select(int64_t dim, const Tensor& index) const;
  Tensor gather(int64_t dim, const Tensor& index) const;

  // ---- in place (bump the version; error on a leaf that requires grad, as PyTorch does)
  Tensor& zero_();
  Tensor& fill_(double v);
  Tensor& add_(const Tensor& o, double alpha = 1.0);
  Tensor& add_(double v);
  Tensor& sub_(const Tensor& o, double alpha = 1.0);
  Tensor& mul_(const Tensor& o);
  Tensor& mul_(double v);
  Tensor& div_(const Tensor& o);
  Tensor& div_(double v);
  Tensor& clamp_(std::optional<double> lo, std::optional<double> hi);
  Tensor& relu_();
  Tensor& exp_();
  Tensor& sqrt_();
  Tensor& masked_fill_(const Tensor& mask, double value);
  Tensor& uniform_(double lo = 0.0, double hi = 1.0);
  Tensor& normal_(double mean = 0.0, double std = 1.0);

 private:
  // Every accessor goes through here, so a method called on an undefined tensor (a default-constructed
  // one, or w.grad() before any backward) throws loom::Error instead of dereferencing null.
  TensorImpl& checked() const {
    if (!impl_) [[unlikely]] detail::throw_undefined_tensor();
    return *impl_;
  }
  std::shared_ptr<TensorImpl> impl_;
};

// Printing as PyTorch prints: tensor([[1., 2.], [3., 4.]], requires_grad=True)
std::ostream& operator<<(std::ostream& os, const Tensor& t);
std::string to_string(const Tensor& t);

// Arithmetic operators (broadcasting); scalars act as 0-dim tensors of the other operand's dtype.
Tensor operator-(const Tensor& a);
Tensor operator+(const Tensor& a, const Tensor& b);
Tensor operator-(const Tensor& a, const Tensor& b);
Tensor operator*(const Tensor& a, const Tensor& b);
Tensor operator/(const Tensor& a, const Tensor& b);
Tensor operator+(const Tensor& a, double b);
Tensor operator-(const Tensor& a, double b);
Tensor operator*(const Tensor& a, double b);
Tensor operator/(const Tensor& a, double b);
Tensor operator+(double a, const Tensor& b);
Tensor operator-(double a, const Tensor& b);
Tensor operator*(double a, const Tensor& b);
Tensor operator/(double a, const Tensor& b);
Tensor operator==(const Tensor& a, const Tensor& b);
Tensor operator!=(const Tensor& a, const Tensor& b);
Tensor operator<(const Tensor& a, const Tensor& b);
Tensor operator<=(const Tensor& a, const Tensor& b);
Tensor operator>(const Tensor& a, const Tensor& b);
Tensor operator>=(const Tensor& a, const Tensor& b);
Tensor operator==(const Tensor& a, double b);
Tensor operator!=(const Tensor& a, double b);
Tensor operator<(const Tensor& a, double b);
Tensor operator<=(const Tensor& a, double b);
Tensor operator>(const Tensor& a, double b);
Tensor operator>=(const Tensor& a, double b);

// Makes a fresh contiguous tensor with uninitialised memory (the primitive every op allocates with).
Tensor make_tensor(const Shape& shape, DType dtype, Device device = {});
// A view of `base`'s storage with new geometry (no autograd; ops wrap it).
Tensor make_view(const Tensor& base, const Shape& shape, const Shape& strides, int64_t offset);

}  // namespace loom
