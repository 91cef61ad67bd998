// Functional forms of the stateless-in-spirit layers, like torch.nn.functional.dropout / embedding.
//   Tensor h = loom::dropout(x, 0.1, /*training=*/true);         // inverted dropout: kept values scale by 1/(1-p)
//   Tensor e = loom::embedding(token_ids, table, /*padding_idx=*/0);  // (B, T) int64 -> (B, T, dim)
#pragma once
#include <optional>

#include "loom/core/generator.h"
#include "loom/core/tensor.h"

namespace loom {

// Zeroes each element with probability p and scales the rest by 1 / (1 - p) when training; returns x
// itself otherwise. The mask comes from `gen` (default: the global generator).
Tensor dropout(const Tensor& x, double p = 0.5, bool training = true, Generator* gen = nullptr);

// Rows of weight (num_embeddings, embedding_dim) picked by integer indices of any shape; the result has
// shape indices.shape() + [embedding_dim]. The padding_idx row (negative counts from the end, as in
// PyTorch) receives no gradient.
Tensor embedding(const Tensor& indices, const Tensor& weight, std::optional<int64_t> padding_idx = std::nullopt);

}  // namespace loom
