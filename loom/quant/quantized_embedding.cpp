#include "loom/quant/quantized_embedding.h"

#include "loom/backend/backend.h"
#include "loom/nn/skip_init.h"
#include "loom/ops/index_check.h"
#include "loom/quant/quantized_linear.h"

namespace loom::quant {

namespace {
// nn::Embedding's constructor allocates and draws a (num, dim) table; built as a 1x1 one instead, then
// re-registered, this layer never holds the f32 table it stands for. The guard (a temporary of the base's
// initializer, so it lives until the base is built) keeps that 1x1 table from drawing, so this layer takes nothing from
// the random stream.
const nn::EmbeddingOptions& undrawn(const nn::SkipInitGuard&, const nn::EmbeddingOptions& o) { return o; }
}  // namespace

QuantizedEmbedding::QuantizedEmbedding(const Tensor& q, QuantFormat f, int64_t dim)
    : nn::Embedding(undrawn(nn::SkipInitGuard(), {.num_embeddings = 1, .embedding_dim = 1})), format(f), weight_q(q) {
  LOOM_CHECK(dim > 0 && dim % QK == 0, "QuantizedEmbedding: embedding_dim must be a positive multiple of ", QK,
             ", got ", dim);
  LOOM_CHECK(q.defined() && q.dtype() == DType::u8 && q.dim() == 2 && q.size(0) > 0 &&
                 q.size(1) == int64_t(row_bytes(f, dim)),
             "QuantizedEmbedding: expected u8 ", format_name(f), " blocks of shape (num_embeddings, ", row_bytes(f, dim),
             ") for embedding_dim ", dim, ", got ", q.defined() ? q.shape() : Shape{}, " ",
             q.defined() ? dtype_name(q.dtype()) : "undefined");
  options = {.num_embeddings = q.size(0), .embedding_dim = dim};
  weight = register_parameter("weight", Tensor());
}

std::shared_ptr<QuantizedEmbedding> QuantizedEmbedding::tied_to(const QuantizedLinear& head) {
  return std::make_shared<QuantizedEmbedding>(head.weight_q, head.format, head.options.in);
}

Tensor QuantizedEmbedding::forward(const Tensor& indices) {
  LOOM_CHECK(indices.dtype() == DType::i64 || indices.dtype() == DType::i32, repr(),
             ": expected int64 or int32 indices, got ", indices.dtype(), " of shape ", indices.shape());
  const int64_t num = options.num_embeddings, dim = options.embedding_dim;
  // The shared blocks may have been replaced by a caller since construction; a wrong shape is an error, not a read
  // past the rows.
  LOOM_CHECK(weight_q.defined() && weight_q.dtype() == DType::u8 && weight_q.dim() == 2 && weight_q.size(0) == num &&
                 weight_q.size(1) == int64_t(row_bytes(format, dim)),
             repr(), ": its blocks are no longer u8 (", num, ", ", row_bytes(format, dim), ")");
  Tensor idx = (indices.dtype() == DType::i64 ? indices : indices.to(DType::i64)).contiguous().reshape({-1});
  if (const auto bad = first_index_out_of_range(idx, num))
    LOOM_FAIL(repr(), ": index ", *bad, " is out of range for ", num, " embeddings");
  // Gather the rows' blocks (a few hundred bytes each), then dequantize just those: the same per-row dequantizer
  // as the whole table's, so the floats equal the table's rows exactly.
  const Tensor q = weight_q.is_contiguous() ? weight_q : weight_q.contiguous();
  Tensor blocks = make_tensor({idx.numel(), q.size(1)}, DType::u8, q.device());
  backend_for(q).index_select(blocks, q, 0, idx);
  Tensor rows = make_tensor({idx.numel(), dim}, DType::f32, q.device());
  backend_for(q).dequantize_rows(rows, blocks, format);
  Shape out = indices.shape();
  out.push_back(dim);
  return rows.reshape(out);
}

std::string QuantizedEmbedding::extra_repr() const {
  return nn::Embedding::extra_repr() + ", format=" + format_name(format);
}

}  // namespace loom::quant
