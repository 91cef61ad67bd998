// Attention for recurrent encoder-decoders: Bahdanau's additive and Luong's dot / general scores.
//   nn::BahdanauAttention attn({.query_size = 256, .key_size = 256, .hidden_size = 128});
//   Tensor pk = attn.project_keys(enc_out);                        // once per source batch: (B, S, A)
//   auto [context, weights] = attn.forward(h, enc_out, pad_mask, pk);   // h (B, Q) -> (B, K), (B, S)
// query is one decoder state (B, Q) or a whole sequence of them (B, T, Q) -> context (B, T, K), weights (B, T, S).
// keys are the encoder outputs (B, S, K); values are the keys. key_padding_mask is bool (B, S), true at padding
// (PyTorch's MultiheadAttention convention): those positions get weight 0. Every row needs one real position.
#pragma once
#include <memory>
#include <string>

#include "loom/nn/linear.h"
#include "loom/nn/module.h"

namespace loom::nn {

struct AttentionOutput {
  Tensor context;  // (B, K) or (B, T, K): the weighted sum of the keys
  Tensor weights;  // (B, S) or (B, T, S): softmax over the source positions
};

// Shared by both: the keys precomputed once per source (project_keys) and the masked softmax + weighted sum.
class RNNAttention : public Module {
 public:
  // What forward would compute from the keys on every call; pass it back as projected_keys in a decode loop.
  virtual Tensor project_keys(const Tensor& keys) = 0;
  // The raw scores (B, T, S) for a 3-D query.
  virtual Tensor scores(const Tensor& query, const Tensor& projected_keys) = 0;
  AttentionOutput forward(const Tensor& query, const Tensor& keys, const Tensor& key_padding_mask = {},
                          const Tensor& projected_keys = {});
  Tensor forward(const Tensor&) override;  // throws: attention needs a query and keys

 protected:
  void check(const Tensor& query, const Tensor& keys, const Tensor& mask, int64_t query_size, int64_t key_size) const;
};

struct BahdanauAttentionOptions {
  int64_t query_size = 0;   // the decoder state
  int64_t key_size = 0;     // the encoder outputs
  int64_t hidden_size = 0;  // the width of the additive layer
};

// score(q, k) = v . tanh(W_q q + W_k k + b): query_proj (no bias), key_proj (with bias), energy (no bias).
class BahdanauAttention : public RNNAttention {
 public:
  explicit BahdanauAttention(const BahdanauAttentionOptions& o);
  Tensor project_keys(const Tensor& keys) override;  // (B, S, hidden)
  Tensor scores(const Tensor& query, const Tensor& projected_keys) override;
  std::string extra_repr() const override;

  BahdanauAttentionOptions options;
  std::shared_ptr<Linear> query_proj, key_proj, energy;
};

struct LuongAttentionOptions {
  int64_t query_size = 0;
  int64_t key_size = 0;         // must equal query_size for "dot"
  std::string score = "dot";    // "dot": q . k;  "general": q . W k (W: key_size -> query_size, no bias)
};

class LuongAttention : public RNNAttention {
 public:
  explicit LuongAttention(const LuongAttentionOptions& o);
  Tensor project_keys(const Tensor& keys) override;  // the keys themselves for "dot", W k for "general"
  Tensor scores(const Tensor& query, const Tensor& projected_keys) override;
  std::string extra_repr() const override;

  LuongAttentionOptions options;
  std::shared_ptr<Linear> key_proj;  // "general" only
};

}  // namespace loom::nn
