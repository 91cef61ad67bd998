// TransformerEncoderLayer and TransformerDecoderLayer: PyTorch's submodule names and registration order,
// post-norm x = norm(x + block(x)) or, with norm_first, pre-norm x = x + block(norm(x)).
#include "loom/nn/transformer.h"

#include "loom/ops/elementwise.h"

namespace loom::nn {

namespace {

void check_layer_options(const TransformerLayerOptions& o, const char* who) {
  LOOM_CHECK(o.activation == "relu" || o.activation == "gelu", who, ": activation must be \"relu\" or \"gelu\", got \"",
             o.activation, "\"");
  LOOM_CHECK(o.dim_feedforward > 0, who, ": dim_feedforward must be positive, got ", o.dim_feedforward);
}

std::shared_ptr<MultiheadAttention> make_attention(const TransformerLayerOptions& o) {
  return std::make_shared<MultiheadAttention>(MultiheadAttentionOptions{
      .embed_dim = o.d_model, .num_heads = o.nhead, .dropout = o.dropout, .batch_first = o.batch_first});
}

std::shared_ptr<LayerNorm> make_norm(const TransformerLayerOptions& o) {
  return std::make_shared<LayerNorm>(LayerNormOptions{.normalized_shape = {o.d_model}, .eps = o.layer_norm_eps});
}

Tensor activate(const Tensor& x, const std::string& activation) { return activation == "gelu" ? gelu(x) : relu(x); }

}  // namespace

TransformerEncoderLayer::TransformerEncoderLayer(const TransformerLayerOptions& o) : options(o) {
  check_layer_options(o, "TransformerEncoderLayer");
  self_attn = register_module("self_attn", make_attention(o));
  linear1 = register_module("linear1", std::make_shared<Linear>(LinearOptions{o.d_model, o.dim_feedforward}));
  dropout = register_module("dropout", std::make_shared<Dropout>(DropoutOptions{o.dropout}));
  linear2 = register_module("linear2", std::make_shared<Linear>(LinearOptions{o.dim_feedforward, o.d_model}));
  norm1 = register_module("norm1", make_norm(o));
  norm2 = register_module("norm2", make_norm(o));
  dropout1 = register_module("dropout1", std::make_shared<Dropout>(DropoutOptions{o.dropout}));
  dropout2 = register_module("dropout2", std::make_shared<Dropout>(DropoutOptions{o.dropout}));
}

Tensor TransformerEncoderLayer::feed_forward(const Tensor& x) {
  return (*dropout2)((*linear2)((*dropout)(activate((*linear1)(x), options.activation))));
}

Tensor TransformerEncoderLayer::forward(const Tensor& src, const EncoderMasks& m) {
  auto sa = [&](const Tensor& x) {
    MultiheadAttentionArgs a{.key_padding_mask = m.src_key_padding_mask, .need_weights = false, .attn_mask = m.mask,
                             .is_causal = m.is_causal};
    return (*dropout1)(self_attn->forward(x, x, x, a).first);
  };
  Tensor x = src;
  if (options.norm_first) {
    x = x + sa((*norm1)(x));
    return x + feed_forward((*norm2)(x));
  }
  x = (*norm1)(x + sa(x));
  return (*norm2)(x + feed_forward(x));
}

TransformerDecoderLayer::TransformerDecoderLayer(const TransformerLayerOptions& o) : options(o) {
  check_layer_options(o, "TransformerDecoderLayer");
  self_attn = register_module("self_attn", make_attention(o));
  multihead_attn = register_module("multihead_attn", make_attention(o));
  linear1 = register_module("linear1", std::make_shared<Linear>(LinearOptions{o.d_model, o.dim_feedforward}));
  dropout = register_module("dropout", std::make_shared<Dropout>(DropoutOptions{o.dropout}));
  linear2 = register_module("linear2", std::make_shared<Linear>(LinearOptions{o.dim_feedforward, o.d_model}));
  norm1 = register_module("norm1", make_norm(o));
  norm2 = register_module("norm2", make_norm(o));
  norm3 = register_module("norm3", make_norm(o));
  dropout1 = register_module("dropout1", std::make_shared<Dropout>(DropoutOptions{o.dropout}));
  dropout2 = register_module("dropout2", std::make_shared<Dropout>(DropoutOptions{o.dropout}));
  dropout3 = register_module("dropout3", std::make_shared<Dropout>(DropoutOptions{o.dropout}));
}

Tensor TransformerDecoderLayer::feed_forward(const Tensor& x) {
  return (*dropout3)((*linear2)((*dropout)(activate((*linear1)(x), options.activation))));
}

Tensor TransformerDecoderLayer::forward(const Tensor& tgt, const Tensor& memory, const DecoderMasks& m) {
  auto sa = [&](const Tensor& x) {
    MultiheadAttentionArgs a{.key_padding_mask = m.tgt_key_padding_mask, .need_weights = false, .attn_mask = m.tgt_mask,
                             .is_causal = m.tgt_is_causal};
    return (*dropout1)(self_attn->forward(x, x, x, a).first);
  };
  auto mha = [&](const Tensor& x) {
    MultiheadAttentionArgs a{.key_padding_mask = m.memory_key_padding_mask, .need_weights = false,
                             .attn_mask = m.memory_mask, .is_causal = m.memory_is_causal};
    return (*dropout2)(multihead_attn->forward(x, memory, memory, a).first);
  };
  Tensor x = tgt;
  if (options.norm_first) {
    x = x + sa((*norm1)(x));
    x = x + mha((*norm2)(x));
    return x + feed_forward((*norm3)(x));
  }
  x = (*norm1)(x + sa(x));
  x = (*norm2)(x + mha(x));
  return (*norm3)(x + feed_forward(x));
}

}  // namespace loom::nn
