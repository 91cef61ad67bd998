// The input lookup of a tied quantized GPT: an Embedding that holds no f32 table and reads the rows it is asked
// for from the LM head's Q8_0 / Q4_0 blocks, dequantizing only those (ggml's get_rows on a quantized token_embd).
//   auto head = quant::QuantizedLinear::from_weight(wte->weight, Tensor(), quant::QuantFormat::q8_0);
//   auto emb = quant::QuantizedEmbedding::tied_to(*head);     // shares head->weight_q, no copy
//   Tensor e = (*emb)(ids);                                   // (B, T) ids -> (B, T, C) f32, = the dequantized rows
//
// A GPT-2 124M's table is 50257 x 768: 154 MB as f32, ~41 MB as Q8_0 blocks that the head already holds, while a
// prompt needs a few hundred rows and a decode step one. The blocks are the head's `weight_q` tensor itself (one
// TensorImpl: load_state_dict copies into it and Module::to moves it in place, so both see the same bytes);
// they are not registered here, so state_dict() and buffers() list them once, under the head. Inference only.
#pragma once
#include <memory>

#include "loom/core/quant_blocks.h"
#include "loom/nn/embedding.h"

namespace loom::quant {

class QuantizedLinear;

class QuantizedEmbedding : public nn::Embedding {
 public:
  // weight_q: u8 (num_embeddings, row_bytes(format, embedding_dim)) blocks, shared, not copied.
  QuantizedEmbedding(const Tensor& weight_q, QuantFormat format, int64_t embedding_dim);
  // The embedding of a tied model: the head's rows are the table's rows.
  static std::shared_ptr<QuantizedEmbedding> tied_to(const QuantizedLinear& head);
  Tensor forward(const Tensor& indices) override;  // int64/int32 ids (any shape) -> (..., embedding_dim) f32
  std::string extra_repr() const override;
  std::string name() const override { return "QuantizedEmbedding"; }

  QuantFormat format;
  Tensor weight_q;  // the head's blocks (not a registered buffer: the head owns and saves them)
};

}  // namespace loom::quant
