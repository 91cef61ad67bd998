// MultiheadAttention: projections, PyTorch-convention masks turned into one SDPA mask, heads, the fused
// attention (or the composite one when the weights are asked for), output projection.
#include "loom/nn/multihead_attention.h"

#include <cmath>
#include <limits>

#include "loom/nn/init.h"
#include "loom/nn/repr.h"
#include "loom/ops/attention.h"
#include "loom/ops/creation.h"
#include "loom/ops/elementwise.h"
#include "loom/ops/linalg.h"
#include "loom/ops/reduce.h"
#include "loom/ops/shape.h"

namespace loom::nn {

MultiheadAttention::MultiheadAttention(const MultiheadAttentionOptions& o) : options(o) {
  const int64_t E = o.embed_dim;
  LOOM_CHECK(E > 0 && o.num_heads > 0, "MultiheadAttention: embed_dim and num_heads must be positive, got ", E, " and ",
             o.num_heads);
  LOOM_CHECK(E % o.num_heads == 0, "MultiheadAttention: embed_dim (", E, ") must be divisible by num_heads (",
             o.num_heads, ")");
  LOOM_CHECK(o.dropout >= 0 && o.dropout < 1, "MultiheadAttention: dropout must be in [0, 1), got ", o.dropout);
  options.kdim = o.kdim ? o.kdim : E;
  options.vdim = o.vdim ? o.vdim : E;
  head_dim = E / o.num_heads;
  // Registration order is PyTorch's, so named_parameters() and state_dict() list the same keys in order.
  if (options.kdim == E && options.vdim == E) {
    in_proj_weight = register_parameter("in_proj_weight", empty({3 * E, E}));
  } else {
    q_proj_weight = register_parameter("q_proj_weight", empty({E, E}));
    k_proj_weight = register_parameter("k_proj_weight", empty({E, options.kdim}));
    v_proj_weight = register_parameter("v_proj_weight", empty({E, options.vdim}));
  }
  in_proj_bias = register_parameter("in_proj_bias", o.bias ? empty({3 * E}) : Tensor());
  out_proj = register_module("out_proj", std::make_shared<Linear>(LinearOptions{E, E, o.bias}));
  reset_parameters();
}

// As PyTorch's _reset_parameters: xavier_uniform_ projections, zero biases (out_proj.weight keeps Linear's init).
void MultiheadAttention::reset_parameters() {
  if (in_proj_weight.defined()) init::xavier_uniform_(in_proj_weight);
  else for (auto& w : {q_proj_weight, k_proj_weight, v_proj_weight}) init::xavier_uniform_(w);
  if (in_proj_bias.defined()) {
    init::zeros_(in_proj_bias);
    init::zeros_(out_proj->bias);
  }
}

Tensor merge_attention_masks(const Tensor& attn_mask, const Tensor& key_padding_mask, int64_t N, int64_t H, int64_t L,
                             int64_t S, DType dtype) {
  constexpr double kInf = std::numeric_limits<double>::infinity();
  // Each part in SDPA's convention: bool true = attend, or float added.
  auto convert = [&](const Tensor& m) { return m.dtype() == DType::boolean ? logical_not(m) : m.to(dtype); };
  Tensor am, kp;
  if (attn_mask.defined()) {
    LOOM_CHECK(attn_mask.dtype() == DType::boolean || is_floating(attn_mask.dtype()),
               "MultiheadAttention: attn_mask must be bool or floating, got ", attn_mask.dtype());
    if (attn_mask.dim() == 2) {
      LOOM_CHECK(attn_mask.size(0) == L && attn_mask.size(1) == S, "MultiheadAttention: the 2-d attn_mask should be (",
                 L, ", ", S, "), got ", attn_mask.shape());
      am = convert(attn_mask);
    } else {
      LOOM_CHECK(attn_mask.dim() == 3 && attn_mask.size(0) == N * H && attn_mask.size(1) == L && attn_mask.size(2) == S,
                 "MultiheadAttention: the 3-d attn_mask should be (", N * H, ", ", L, ", ", S, "), got ",
                 attn_mask.shape());
      am = convert(attn_mask).reshape({N, H, L, S});
    }
  }
  if (key_padding_mask.defined()) {
    LOOM_CHECK(key_padding_mask.dtype() == DType::boolean || is_floating(key_padding_mask.dtype()),
               "MultiheadAttention: key_padding_mask must be bool or floating, got ", key_padding_mask.dtype());
    LOOM_CHECK(key_padding_mask.numel() == N * S, "MultiheadAttention: key_padding_mask should be (", N, ", ", S,
               "), got ", key_padding_mask.shape());
    kp = convert(key_padding_mask).reshape({N, 1, 1, S});
  }
  if (!am.defined()) return kp;
  if (!kp.defined()) return am;
  if (am.dtype() == DType::boolean && kp.dtype() == DType::boolean) return logical_and(am, kp);
  auto additive = [&](const Tensor& m) { return m.dtype() == DType::boolean ? where(m, zeros({}, {.dtype = dtype}), -kInf) : m; };
  return additive(am) + additive(kp);
}

std::pair<Tensor, Tensor> MultiheadAttention::forward(const Tensor& query, const Tensor& key, const Tensor& value,
                                                      const MultiheadAttentionArgs& a) {
  const int64_t E = options.embed_dim, H = options.num_heads;
  LOOM_CHECK(query.dim() == 2 || query.dim() == 3, repr(), ": query must be (L, N, E), (N, L, E) with batch_first, or "
             "unbatched (L, E); got ", query.shape());
  LOOM_CHECK(key.dim() == query.dim() && value.dim() == query.dim(), repr(), ": query, key and value must have the same "
             "number of dims; got ", query.shape(), ", ", key.shape(), ", ", value.shape());
  LOOM_CHECK(query.size(-1) == E && key.size(-1) == options.kdim && value.size(-1) == options.vdim, repr(),
             ": expected feature sizes ", E, ", ", options.kdim, ", ", options.vdim, " for query, key, value; got ",
             query.shape(), ", ", key.shape(), ", ", value.shape());
  const bool unbatched = query.dim() == 2;
  // Everything below works batch-first: (N, L, E).
  auto to_bf = [&](const Tensor& t) {
    if (unbatched) return t.unsqueeze(0);
    return options.batch_first ? t : t.transpose(0, 1);
  };
  Tensor q_in = to_bf(query), k_in = to_bf(key), v_in = to_bf(value);
  const int64_t N = q_in.size(0), L = q_in.size(1), S = k_in.size(1);
  LOOM_CHECK(k_in.size(0) == N && v_in.size(0) == N && v_in.size(1) == S, repr(),
             ": key and value must match the query's batch and each other's length; got ", query.shape(), ", ",
             key.shape(), ", ", value.shape());
  Tensor bq, bk, bv;
  if (in_proj_bias.defined()) {
    bq = in_proj_bias.narrow(0, 0, E);
    bk = in_proj_bias.narrow(0, E, E);
    bv = in_proj_bias.narrow(0, 2 * E, E);
  }
  Tensor q, k, v;
  if (in_proj_weight.defined() && query.is_same(key) && key.is_same(value)) {
    auto qkv = linear(q_in, in_proj_weight, in_proj_bias).chunk(3, -1);  // self-attention: one GEMM
    q = qkv[0], k = qkv[1], v = qkv[2];
  } else {
    const bool packed = in_proj_weight.defined();
    q = linear(q_in, packed ? in_proj_weight.narrow(0, 0, E) : q_proj_weight, bq);
    k = linear(k_in, packed ? in_proj_weight.narrow(0, E, E) : k_proj_weight, bk);
    v = linear(v_in, packed ? in_proj_weight.narrow(0, 2 * E, E) : v_proj_weight, bv);
  }
  auto heads = [&](const Tensor& t, int64_t T) { return t.reshape({N, T, H, head_dim}).transpose(1, 2); };
  q = heads(q, L), k = heads(k, S), v = heads(v, S);
  Tensor kpm = a.key_padding_mask;
  if (kpm.defined() && unbatched) kpm = kpm.reshape({1, S});
  SDPAOptions so{.attn_mask = merge_attention_masks(a.attn_mask, kpm, N, H, L, S, q.dtype()),
                 .is_causal = a.is_causal,
                 .dropout_p = is_training() ? options.dropout : 0.0};
  Tensor y, w;
  if (a.need_weights) std::tie(y, w) = attention_with_weights(q, k, v, so);
  else y = scaled_dot_product_attention(q, k, v, so);
  y = (*out_proj)(y.transpose(1, 2).reshape({N, L, E}));
  if (w.defined() && a.average_attn_weights) w = w.mean({1});
  if (unbatched) {
    y = y.squeeze(0);
    if (w.defined()) w = w.squeeze(0);
  } else if (!options.batch_first) {
    y = y.transpose(0, 1);
  }
  return {y, w};
}

Tensor MultiheadAttention::forward(const Tensor& x) { return forward(x, x, x, {.need_weights = false}).first; }

std::string MultiheadAttention::extra_repr() const { return ""; }

}  // namespace loom::nn
