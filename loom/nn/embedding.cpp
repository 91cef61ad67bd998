#include "loom/nn/embedding.h"

#include "loom/autograd/grad_mode.h"
#include "loom/nn/init.h"
#include "loom/ops/creation.h"
#include "loom/ops/nn_functional.h"

namespace loom::nn {

Embedding::Embedding(const EmbeddingOptions& o) : options(o) {
  LOOM_CHECK(o.num_embeddings > 0 && o.embedding_dim > 0,
             "Embedding: .num_embeddings and .embedding_dim must be positive, got ", o.num_embeddings, " and ",
             o.embedding_dim);
  if (o.padding_idx) {
    const int64_t p = *o.padding_idx < 0 ? *o.padding_idx + o.num_embeddings : *o.padding_idx;
    LOOM_CHECK(p >= 0 && p < o.num_embeddings, "Embedding: padding_idx ", *o.padding_idx,
               " must be within num_embeddings (", o.num_embeddings, ")");
    options.padding_idx = p;
  }
  weight = register_parameter("weight", empty({o.num_embeddings, o.embedding_dim}));
  reset_parameters();
}

void Embedding::reset_parameters() {
  init::normal_(weight);
  if (options.padding_idx) {
    NoGradGuard g;
    weight.select(0, *options.padding_idx).fill_(0.0);
  }
}

Tensor Embedding::forward(const Tensor& indices) {
  LOOM_CHECK(indices.dtype() == DType::i64 || indices.dtype() == DType::i32, repr(),
             ": expected int64 or int32 indices, got ", indices.dtype(), " of shape ", indices.shape());
  return embedding(indices, weight, options.padding_idx);
}

std::string Embedding::extra_repr() const {
  std::string s = std::to_string(options.num_embeddings) + ", " + std::to_string(options.embedding_dim);
  if (options.padding_idx) s += ", padding_idx=" + std::to_string(*options.padding_idx);
  return s;
}

}  // namespace loom::nn
