#include "loom/nn/rnn_attention.h"

#include <limits>

#include "loom/core/error.h"
#include "loom/ops/ops.h"

namespace loom::nn {

void RNNAttention::check(const Tensor& q, const Tensor& k, const Tensor& mask, int64_t Q, int64_t K) const {
  const std::string who = name();
  LOOM_CHECK(q.defined() && (q.dim() == 2 || q.dim() == 3) && q.size(-1) == Q, who, ": query must be (B, ", Q,
             ") or (B, T, ", Q, "), got ", q.defined() ? q.shape() : Shape{});
  LOOM_CHECK(k.defined() && k.dim() == 3 && (K < 0 || k.size(2) == K) && k.size(0) == q.size(0), who,
             ": keys must be (B, S, ", K < 0 ? std::string("K") : std::to_string(K), ") with the query's batch ",
             q.size(0), ", got ", k.defined() ? k.shape() : Shape{});
  if (mask.defined())
    LOOM_CHECK(mask.dtype() == DType::boolean && mask.shape() == Shape({k.size(0), k.size(1)}), who,
               ": key_padding_mask must be bool (B, S) = (", k.size(0), ", ", k.size(1), "), got ", mask.dtype(), " ",
               mask.shape());
}

Tensor RNNAttention::forward(const Tensor&) {
  LOOM_FAIL(name(), ": call forward(query, keys, key_padding_mask, projected_keys)");
}

AttentionOutput RNNAttention::forward(const Tensor& query, const Tensor& keys, const Tensor& key_padding_mask,
                                      const Tensor& projected_keys) {
  check(query, keys, key_padding_mask, query.defined() ? query.size(-1) : 0, -1);
  const bool step = query.dim() == 2;
  const Tensor q = step ? query.unsqueeze(1) : query;
  Tensor s = scores(q, projected_keys.defined() ? projected_keys : project_keys(keys));  // (B, T, S)
  if (key_padding_mask.defined())
    s = masked_fill(s, key_padding_mask.unsqueeze(1), -std::numeric_limits<double>::infinity());
  Tensor w = softmax(s, -1);
  Tensor context = bmm(w, keys);  // (B, T, S) @ (B, S, K)
  if (step) return {context.squeeze(1), w.squeeze(1)};
  return {context, w};
}

BahdanauAttention::BahdanauAttention(const BahdanauAttentionOptions& o) : options(o) {
  LOOM_CHECK(o.query_size > 0 && o.key_size > 0 && o.hidden_size > 0,
             "BahdanauAttention: query_size, key_size and hidden_size must be positive");
  query_proj = register_module("query_proj", std::make_shared<Linear>(LinearOptions{o.query_size, o.hidden_size, false}));
  key_proj = register_module("key_proj", std::make_shared<Linear>(LinearOptions{o.key_size, o.hidden_size, true}));
  energy = register_module("energy", std::make_shared<Linear>(LinearOptions{o.hidden_size, 1, false}));
}

Tensor BahdanauAttention::project_keys(const Tensor& keys) {
  LOOM_CHECK(keys.defined() && keys.dim() == 3 && keys.size(2) == options.key_size,
             "BahdanauAttention: keys must be (B, S, ", options.key_size, ")");
  return (*key_proj)(keys);
}

Tensor BahdanauAttention::scores(const Tensor& q, const Tensor& pk) {
  check(q, pk, {}, options.query_size, options.hidden_size);
  // (B, T, 1, A) + (B, 1, S, A): every query against every key, then v . tanh(...) -> (B, T, S).
  Tensor e = tanh((*query_proj)(q).unsqueeze(2) + pk.unsqueeze(1));
  return (*energy)(e).squeeze(-1);
}

std::string BahdanauAttention::extra_repr() const {
  return "query_size=" + std::to_string(options.query_size) + ", key_size=" + std::to_string(options.key_size) +
         ", hidden_size=" + std::to_string(options.hidden_size);
}

LuongAttention::LuongAttention(const LuongAttentionOptions& o) : options(o) {
  LOOM_CHECK(o.query_size > 0 && o.key_size > 0, "LuongAttention: query_size and key_size must be positive");
  LOOM_CHECK(o.score == "dot" || o.score == "general", "LuongAttention: score must be \"dot\" or \"general\", got \"",
             o.score, "\"");
  LOOM_CHECK(o.score != "dot" || o.query_size == o.key_size, "LuongAttention: the dot score needs query_size == key_size (",
             o.query_size, " vs ", o.key_size, "); use score \"general\" to learn a projection");
  if (o.score == "general")
    key_proj = register_module("key_proj", std::make_shared<Linear>(LinearOptions{o.key_size, o.query_size, false}));
}

Tensor LuongAttention::project_keys(const Tensor& keys) {
  LOOM_CHECK(keys.defined() && keys.dim() == 3 && keys.size(2) == options.key_size, "LuongAttention: keys must be (B, S, ",
             options.key_size, ")");
  return key_proj ? (*key_proj)(keys) : keys;
}

Tensor LuongAttention::scores(const Tensor& q, const Tensor& pk) {
  check(q, pk, {}, options.query_size, options.query_size);
  return bmm(q, pk.transpose(1, 2));  // (B, T, Q) @ (B, Q, S)
}

std::string LuongAttention::extra_repr() const {
  return "query_size=" + std::to_string(options.query_size) + ", key_size=" + std::to_string(options.key_size) +
         ", score=" + options.score;
}

}  // namespace loom::nn
