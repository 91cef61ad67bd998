// TransformerEncoder / TransformerDecoder stacks and the full Transformer (torch.nn.Transformer).
#include "loom/nn/transformer.h"

#include <limits>

#include "loom/nn/init.h"
#include "loom/ops/creation.h"

namespace loom::nn {

namespace {

// Gives every layer after the first the first one's weights, as PyTorch's copy.deepcopy clones do.
void copy_first_layer(ModuleList& layers) {
  if (layers.size() < 2) return;
  const StateDict first = layers[0]->state_dict();
  for (size_t i = 1; i < layers.size(); ++i) layers[int64_t(i)]->load_state_dict(first);
}

std::shared_ptr<LayerNorm> final_norm(const TransformerLayerOptions& o) {
  return std::make_shared<LayerNorm>(LayerNormOptions{.normalized_shape = {o.d_model}, .eps = o.layer_norm_eps});
}

}  // namespace

TransformerEncoder::TransformerEncoder(const TransformerLayerOptions& layer, int64_t num_layers, bool with_norm) {
  LOOM_CHECK(num_layers > 0, "TransformerEncoder: num_layers must be positive, got ", num_layers);
  layers = register_module("layers", std::make_shared<ModuleList>());
  for (int64_t i = 0; i < num_layers; ++i) layers->push_back(std::make_shared<TransformerEncoderLayer>(layer));
  copy_first_layer(*layers);
  if (with_norm) norm = register_module("norm", final_norm(layer));
}

Tensor TransformerEncoder::forward(const Tensor& src, const EncoderMasks& m) {
  Tensor x = src;
  for (const auto& [name, layer] : *layers) x = std::static_pointer_cast<TransformerEncoderLayer>(layer)->forward(x, m);
  return norm ? (*norm)(x) : x;
}

TransformerDecoder::TransformerDecoder(const TransformerLayerOptions& layer, int64_t num_layers, bool with_norm) {
  LOOM_CHECK(num_layers > 0, "TransformerDecoder: num_layers must be positive, got ", num_layers);
  layers = register_module("layers", std::make_shared<ModuleList>());
  for (int64_t i = 0; i < num_layers; ++i) layers->push_back(std::make_shared<TransformerDecoderLayer>(layer));
  copy_first_layer(*layers);
  if (with_norm) norm = register_module("norm", final_norm(layer));
}

Tensor TransformerDecoder::forward(const Tensor& tgt, const Tensor& memory, const DecoderMasks& m) {
  Tensor x = tgt;
  for (const auto& [name, layer] : *layers)
    x = std::static_pointer_cast<TransformerDecoderLayer>(layer)->forward(x, memory, m);
  return norm ? (*norm)(x) : x;
}

Transformer::Transformer(const TransformerOptions& o) : options(o) {
  const TransformerLayerOptions layer{.d_model = o.d_model, .nhead = o.nhead, .dim_feedforward = o.dim_feedforward,
                                      .dropout = o.dropout, .activation = o.activation,
                                      .layer_norm_eps = o.layer_norm_eps, .batch_first = o.batch_first,
                                      .norm_first = o.norm_first};
  encoder = register_module("encoder", std::make_shared<TransformerEncoder>(layer, o.num_encoder_layers, true));
  decoder = register_module("decoder", std::make_shared<TransformerDecoder>(layer, o.num_decoder_layers, true));
  for (auto& p : parameters())
    if (p.dim() > 1) init::xavier_uniform_(p);
}

Tensor Transformer::forward(const Tensor& src, const Tensor& tgt, const TransformerMasks& m) {
  const int64_t batch_dim = options.batch_first ? 0 : 1;
  LOOM_CHECK(src.dim() == tgt.dim() && (src.dim() == 2 || src.size(batch_dim) == tgt.size(batch_dim)),
             "Transformer: the batch number of src and tgt must be equal; got ", src.shape(), " and ", tgt.shape());
  LOOM_CHECK(src.size(-1) == options.d_model && tgt.size(-1) == options.d_model,
             "Transformer: the feature number of src and tgt must be equal to d_model (", options.d_model, "); got ",
             src.shape(), " and ", tgt.shape());
  Tensor memory = encoder->forward(src, {m.src_mask, m.src_key_padding_mask, m.src_is_causal});
  return decoder->forward(tgt, memory,
                          {m.tgt_mask, m.memory_mask, m.tgt_key_padding_mask, m.memory_key_padding_mask, m.tgt_is_causal,
                           false});
}

Tensor Transformer::generate_square_subsequent_mask(int64_t sz, DType dtype) {
  // Row i hides keys j > i.
  std::vector<double> v(size_t(sz * sz), 0.0);
  for (int64_t i = 0; i < sz; ++i)
    for (int64_t j = i + 1; j < sz; ++j) v[size_t(i * sz + j)] = -std::numeric_limits<double>::infinity();
  return tensor(v, {sz, sz}).to(dtype);
}

}  // namespace loom::nn
