// Embedding, like torch.nn.Embedding: a (num_embeddings, embedding_dim) table looked up by integer ids.
//   nn::Embedding emb({.num_embeddings = 10000, .embedding_dim = 256, .padding_idx = 0});
//   Tensor e = emb(token_ids);   // (B, T) int64 -> (B, T, 256)
// The weight starts N(0, 1) with the padding row zeroed; the padding row gets no gradient.
#pragma once
#include <optional>

#include "loom/nn/module.h"

namespace loom::nn {

struct EmbeddingOptions {
  int64_t num_embeddings = 0;
  int64_t embedding_dim = 0;
  std::optional<int64_t> padding_idx = std::nullopt;  // negative counts from the end, as in PyTorch
};

class Embedding : public Module {
 public:
  explicit Embedding(const EmbeddingOptions& o);
  Tensor forward(const Tensor& indices) override;
  std::string extra_repr() const override;
  void reset_parameters();

  EmbeddingOptions options;  // padding_idx stored non-negative
  Tensor weight;             // (num_embeddings, embedding_dim)
};

}  // namespace loom::nn
