// Dropout is a composite (a mask multiply: its gradient is the same mask); embedding records its own node
// so that the padding row can be left out of the gradient, as PyTorch's embedding_backward does.
#include "loom/ops/nn_functional.h"

#include "loom/autograd/function.h"
#include "loom/backend/backend.h"
#include "loom/ops/creation.h"
#include "loom/ops/elementwise.h"
#include "loom/ops/index.h"
#include "loom/ops/index_check.h"

namespace loom {

using autograd::needs_grad;
using autograd::record;
using G = std::vector<Tensor>;

Tensor dropout(const Tensor& x, double p, bool training, Generator* gen) {
  LOOM_CHECK(p >= 0.0 && p <= 1.0, "dropout: probability has to be between 0 and 1, but got ", p);
  if (!training || p == 0.0) return x;
  LOOM_CHECK(is_floating(x.dtype()), "dropout: expected a floating point input, got ", x.dtype());
  if (p == 1.0) return x * 0.0;  // the 1 / (1 - p) scale would be inf, and 0 * inf is nan
  Tensor mask = bernoulli(x.detach(), 1.0 - p, gen) * (1.0 / (1.0 - p));
  return x * mask;
}

Tensor embedding(const Tensor& indices, const Tensor& weight, std::optional<int64_t> padding_idx) {
  LOOM_CHECK(weight.defined() && weight.dim() == 2,
             "embedding: weight must be 2-d (num_embeddings, embedding_dim), got ",
             weight.defined() ? weight.shape() : Shape{});
  LOOM_CHECK(indices.dtype() == DType::i64 || indices.dtype() == DType::i32,
             "embedding: indices must be int64 or int32, got ", indices.dtype());
  const int64_t num = weight.size(0), dim = weight.size(1);
  Tensor idx = (indices.dtype() == DType::i64 ? indices : indices.to(DType::i64)).contiguous().reshape({-1});
  if (const auto bad = first_index_out_of_range(idx, num))
    LOOM_FAIL("embedding: index ", *bad, " is out of range for ", num, " embeddings (weight of shape ", weight.shape(),
              ")");
  int64_t pad = -1;
  if (padding_idx) {
    pad = *padding_idx < 0 ? *padding_idx + num : *padding_idx;
    LOOM_CHECK(pad >= 0 && pad < num, "embedding: padding_idx ", *padding_idx, " must be within num_embeddings (",
               num, ")");
  }
  Tensor w = weight.is_contiguous() ? weight.detach() : weight.detach().contiguous();
  Tensor rows = make_tensor({idx.numel(), dim}, w.dtype(), w.device());
  backend_for(w).index_select(rows, w, 0, idx);
  if (needs_grad({weight}))
    record("Embedding", {rows}, {weight}, [idx, num, dim, pad, dt = weight.dtype()](const G& g) {
      Tensor gr = g[0].reshape({-1, dim});
      if (pad >= 0) gr = masked_fill(gr, (idx == double(pad)).unsqueeze(1), 0.0);
      return G{index_add(zeros({num, dim}, {.dtype = dt, .device = gr.device()}), 0, idx, gr)};
    });
  Shape out = indices.shape();
  out.push_back(dim);
  return rows.view(out);
}

}  // namespace loom
