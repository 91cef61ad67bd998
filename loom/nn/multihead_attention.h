// MultiheadAttention with torch.nn.MultiheadAttention's parameters, masks and return values.
//   nn::MultiheadAttention mha({.embed_dim = 64, .num_heads = 4, .batch_first = true});
//   auto [y, w] = mha.forward(x, x, x, {.key_padding_mask = pad});   // y (N, L, E), w (N, L, S) averaged
//   Tensor z = mha(x);                                                 // self-attention, output only
#pragma once
#include <utility>

#include "loom/nn/linear.h"
#include "loom/nn/module.h"

namespace loom::nn {

struct MultiheadAttentionOptions {
  int64_t embed_dim = 0;
  int64_t num_heads = 1;
  double dropout = 0.0;  // on the attention weights, in training mode
  bool bias = true;      // in_proj_bias and out_proj.bias
  int64_t kdim = 0;      // key features (0: embed_dim); differing kdim/vdim give q/k/v_proj_weight
  int64_t vdim = 0;
  bool batch_first = false;  // (N, L, E) instead of PyTorch's default (L, N, E)
};

// Masks follow PyTorch's MultiheadAttention convention, the opposite of scaled_dot_product_attention's:
// a bool true means "do not attend"; a float mask is added to the scores.
struct MultiheadAttentionArgs {
  Tensor key_padding_mask = Tensor();  // (N, S) or (S) when unbatched
  bool need_weights = true;            // also return the weights (runs the unfused path)
  Tensor attn_mask = Tensor();         // (L, S) or (N * num_heads, L, S)
  bool average_attn_weights = true;    // weights (N, L, S) averaged over heads, else (N, H, L, S)
  bool is_causal = false;              // query i sees keys j <= i (combined with attn_mask if given)
};

class MultiheadAttention : public Module {
 public:
  explicit MultiheadAttention(const MultiheadAttentionOptions& o);
  // query (L, N, E) / key, value (S, N, kdim|vdim); batch_first swaps the first two; unbatched (L, E) works
  // too. Returns the output (as query) and the weights (undefined unless need_weights).
  std::pair<Tensor, Tensor> forward(const Tensor& query, const Tensor& key, const Tensor& value,
                                    const MultiheadAttentionArgs& a = {});
  // Self-attention without masks, output only (so the module works in Sequential and summary()).
  Tensor forward(const Tensor& x) override;
  std::string extra_repr() const override;
  void reset_parameters();

  MultiheadAttentionOptions options;
  int64_t head_dim = 0;
  Tensor in_proj_weight;                            // (3E, E) when kdim == vdim == E
  Tensor q_proj_weight, k_proj_weight, v_proj_weight;  // else (E, E), (E, kdim), (E, vdim)
  Tensor in_proj_bias;                              // (3E)
  std::shared_ptr<Linear> out_proj;
};

// The combined SDPA mask (true = attend, or float additive, broadcastable to (N, H, L, S)) of PyTorch-
// convention attn_mask and key_padding_mask; undefined when neither is given. Used by the layers above.
Tensor merge_attention_masks(const Tensor& attn_mask, const Tensor& key_padding_mask, int64_t N, int64_t H, int64_t L,
                             int64_t S, DType dtype);

}  // namespace loom::nn
