// Indexing, like torch.index_select / gather / scatter_add. Index tensors are int64.
//   Tensor rows = loom::index_select(x, 0, idx);
//   Tensor picked = loom::gather(logp, 1, target.unsqueeze(1));
#pragma once
#include "loom/core/tensor.h"

namespace loom {

Tensor index_select(const Tensor& x, int64_t dim, const Tensor& index);
Tensor index_add(const Tensor& x, int64_t dim, const Tensor& index, const Tensor& src);
Tensor gather(const Tensor& x, int64_t dim, const Tensor& index);
Tensor scatter(const Tensor& x, int64_t dim, const Tensor& index, const Tensor& src);
Tensor scatter_add(const Tensor& x, int64_t dim, const Tensor& index, const Tensor& src);
Tensor one_hot(const Tensor& index, int64_t num_classes);  // int64 (..., num_classes)

}  // namespace loom
