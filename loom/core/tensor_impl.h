// TensorImpl: the shared state behind a Tensor handle: storage + view geometry + autograd metadata.
// Views share `storage` and differ in shape/strides/offset. Offsets and strides count elements.
#pragma once
#include <memory>

#include "loom/core/dtype.h"
#include "loom/core/shape.h"
#include "loom/core/storage.h"

namespace loom {

namespace autograd { struct Node; }

struct TensorImpl {
  std::shared_ptr<Storage> storage;
  Shape shape;
  Shape strides;
  int64_t offset = 0;
  DType dtype = DType::f32;

  // Autograd. A leaf that requires grad gets its gradient accumulated into `grad`; a non-leaf has a
  // grad_fn, and output_nr says which output of that node it is.
  bool requires_grad = false;
  bool retains_grad = false;
  bool is_view = false;  // shares storage with a base tensor (in-place autograd on views is refused)
  std::shared_ptr<TensorImpl> grad;
  std::shared_ptr<autograd::Node> grad_fn;
  uint32_t output_nr = 0;
  // A leaf's accumulator node is created lazily and shared by every graph that uses the leaf.
  std::weak_ptr<autograd::Node> grad_accumulator;

  void* data_ptr() const { return static_cast<char*>(storage->data) + offset * itemsize(dtype); }
};

}  // namespace loom
