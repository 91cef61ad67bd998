// Transformer layers with torch.nn's parameter names and semantics (post-norm by default, norm_first for
// pre-norm; relu or gelu; dropout in training mode), so state dicts move between loom and PyTorch.
//   nn::Transformer t({.d_model = 64, .nhead = 4, .num_encoder_layers = 2, .num_decoder_layers = 2, .batch_first = true});
//   Tensor y = t.forward(src, tgt, {.tgt_mask = nn::Transformer::generate_square_subsequent_mask(tgt.size(1))});
#pragma once
#include <string>

#include "loom/nn/container.h"
#include "loom/nn/dropout.h"
#include "loom/nn/multihead_attention.h"
#include "loom/nn/norm_layers.h"

namespace loom::nn {

struct TransformerLayerOptions {
  int64_t d_model = 512;
  int64_t nhead = 8;
  int64_t dim_feedforward = 2048;
  double dropout = 0.1;
  std::string activation = "relu";  // "relu" or "gelu"
  double layer_norm_eps = 1e-5;
  bool batch_first = false;
  bool norm_first = false;
};

// Masks as in PyTorch: attn masks (L, S) or (N * nhead, L, S), bool true = masked or float added;
// key padding masks (N, S), true = padding. *_is_causal applies the causal mask without materialising it.
struct EncoderMasks {
  Tensor mask = Tensor();
  Tensor src_key_padding_mask = Tensor();
  bool is_causal = false;
};

struct DecoderMasks {
  Tensor tgt_mask = Tensor();
  Tensor memory_mask = Tensor();
  Tensor tgt_key_padding_mask = Tensor();
  Tensor memory_key_padding_mask = Tensor();
  bool tgt_is_causal = false;
  bool memory_is_causal = false;
};

class TransformerEncoderLayer : public Module {
 public:
  explicit TransformerEncoderLayer(const TransformerLayerOptions& o);
  Tensor forward(const Tensor& src, const EncoderMasks& m);
  Tensor forward(const Tensor& src) override { return forward(src, EncoderMasks{}); }

  TransformerLayerOptions options;
  std::shared_ptr<MultiheadAttention> self_attn;
  std::shared_ptr<Linear> linear1, linear2;
  std::shared_ptr<Dropout> dropout, dropout1, dropout2;
  std::shared_ptr<LayerNorm> norm1, norm2;

 private:
  Tensor feed_forward(const Tensor& x);
};

class TransformerDecoderLayer : public Module {
 public:
  explicit TransformerDecoderLayer(const TransformerLayerOptions& o);
  Tensor forward(const Tensor& tgt, const Tensor& memory, const DecoderMasks& m = {});

  TransformerLayerOptions options;
  std::shared_ptr<MultiheadAttention> self_attn, multihead_attn;
  std::shared_ptr<Linear> linear1, linear2;
  std::shared_ptr<Dropout> dropout, dropout1, dropout2, dropout3;
  std::shared_ptr<LayerNorm> norm1, norm2, norm3;

 private:
  Tensor feed_forward(const Tensor& x);
};

// num_layers copies of one layer configuration under "layers.N", all starting from the same weights (as
// PyTorch's deep copies do), then an optional final LayerNorm "norm".
class TransformerEncoder : public Module {
 public:
  TransformerEncoder(const TransformerLayerOptions& layer, int64_t num_layers, bool final_norm = false);
  Tensor forward(const Tensor& src, const EncoderMasks& m);
  Tensor forward(const Tensor& src) override { return forward(src, EncoderMasks{}); }

  std::shared_ptr<ModuleList> layers;
  std::shared_ptr<LayerNorm> norm;  // null without final_norm
};

class TransformerDecoder : public Module {
 public:
  TransformerDecoder(const TransformerLayerOptions& layer, int64_t num_layers, bool final_norm = false);
  Tensor forward(const Tensor& tgt, const Tensor& memory, const DecoderMasks& m = {});

  std::shared_ptr<ModuleList> layers;
  std::shared_ptr<LayerNorm> norm;
};

struct TransformerOptions {
  int64_t d_model = 512;
  int64_t nhead = 8;
  int64_t num_encoder_layers = 6;
  int64_t num_decoder_layers = 6;
  int64_t dim_feedforward = 2048;
  double dropout = 0.1;
  std::string activation = "relu";
  double layer_norm_eps = 1e-5;
  bool batch_first = false;
  bool norm_first = false;
};

struct TransformerMasks {
  Tensor src_mask = Tensor(), tgt_mask = Tensor(), memory_mask = Tensor();
  Tensor src_key_padding_mask = Tensor(), tgt_key_padding_mask = Tensor(), memory_key_padding_mask = Tensor();
  bool src_is_causal = false, tgt_is_causal = false;
};

// encoder (with final norm) and decoder (with final norm); every matrix parameter starts xavier-uniform.
class Transformer : public Module {
 public:
  explicit Transformer(const TransformerOptions& o = {});
  Tensor forward(const Tensor& src, const Tensor& tgt, const TransformerMasks& m = {});
  // (sz, sz) float: 0 on and below the diagonal, -inf above (PyTorch's generate_square_subsequent_mask).
  static Tensor generate_square_subsequent_mask(int64_t sz, DType dtype = DType::f32);

  TransformerOptions options;
  std::shared_ptr<TransformerEncoder> encoder;
  std::shared_ptr<TransformerDecoder> decoder;
};

}  // namespace loom::nn
