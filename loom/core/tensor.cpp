// Tensor metadata and construction primitives: the part of Tensor that needs nothing above core.
// Everything that runs an op, the autograd engine or a backend kernel (math methods, to(), backward(),
// printing) lives above, in loom/ops/tensor_methods.cpp and loom/ops/tensor_print.cpp, so that core
// stays the ground floor of the layer table (docs/ARCHITECTURE.md).
#include "loom/core/tensor.h"

#include "loom/core/dispatch.h"

namespace loom {

void detail::throw_undefined_tensor() {
  LOOM_FAIL("the tensor is undefined (a default-constructed Tensor, or grad() of a tensor before any backward() "
            "reached it); check t.defined() first");
}

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

int64_t Tensor::size(int64_t d) const { return checked().shape[size_t(wrap_dim(d, dim(), "size"))]; }
int64_t Tensor::stride(int64_t d) const { return checked().strides[size_t(wrap_dim(d, dim(), "stride"))]; }

bool Tensor::is_contiguous() const {
  checked();
  int64_t expect = 1;
  for (size_t i = impl_->shape.size(); i-- > 0;) {
    if (impl_->shape[i] == 1) continue;
    if (impl_->strides[i] != expect) return false;
    expect *= impl_->shape[i];
  }
  return true;
}

Tensor& Tensor::requires_grad_(bool on) {
  LOOM_CHECK(!on || is_floating(dtype()), "requires_grad_: only floating point tensors can require gradients, got ",
             dtype());
  LOOM_CHECK(on || is_leaf(), "requires_grad_: you can only change requires_grad flags of leaf variables");
  impl_->requires_grad = on;
  return *this;
}

Tensor Tensor::detach() const {
  checked();
  auto impl = std::make_shared<TensorImpl>();
  impl->storage = impl_->storage;
  impl->shape = impl_->shape;
  impl->strides = impl_->strides;
  impl->offset = impl_->offset;
  impl->dtype = impl_->dtype;
  return Tensor(std::move(impl));
}

Tensor& Tensor::detach_() {
  checked();
  impl_->grad_fn.reset();
  impl_->requires_grad = false;
  return *this;
}

}  // namespace loom
