// GPT: a GPT-2-architecture decoder-only transformer (pre-LayerNorm blocks, learned positions, tied
// embeddings by default), with a key/value cache for generation. Parameter names are Hugging Face's GPT-2
// names (wte, wpe, h.0.attn.c_attn, ...), so gpt_hf.h moves weights to and from HF folders by name.
//   auto gpt = std::make_shared<models::GPT>(models::GPTConfig{.vocab_size = 65, .n_positions = 128, .n_embd = 128});
//   Tensor logits = (*gpt)(idx);                               // i64 (B, T) -> f32 (B, T, vocab)
//   auto st = gpt->start_decoding(1);  Tensor last = gpt->decode_step(*st, prompt);  // then one token at a time
#pragma once
#include <memory>
#include <string>
#include <vector>

#include "loom/models/language_model.h"
#include "loom/nn/container.h"
#include "loom/nn/dropout.h"
#include "loom/nn/embedding.h"
#include "loom/nn/linear.h"
#include "loom/nn/norm_layers.h"

namespace loom::models {

struct GPTConfig {
  int64_t vocab_size = 50257;
  int64_t n_positions = 1024;  // the context: the longest sequence the model accepts
  int64_t n_embd = 768;
  int64_t n_layer = 12;
  int64_t n_head = 12;
  int64_t n_inner = 0;  // MLP width; 0 means 4 * n_embd (HF's null)
  double dropout = 0.0;  // embedding, attention-weight and residual dropout (HF's embd/attn/resid_pdrop)
  double layer_norm_epsilon = 1e-5;
  // HF's activation names: "gelu_new" / "gelu_pytorch_tanh" / "gelu_fast" (tanh form, GPT-2's) or "gelu" (erf).
  std::string activation_function = "gelu_new";
  bool tie_word_embeddings = true;  // lm_head shares wte's weight
  double initializer_range = 0.02;  // the std of the normal weight init (HF's key)
  // Recompute each block in backward instead of keeping its activations (autograd/checkpoint.h).
  bool activation_checkpointing = false;

  int64_t inner() const { return n_inner > 0 ? n_inner : 4 * n_embd; }
  // {"arch": "gpt", HF's keys...}; from_json also takes HF's n_ctx, embd_pdrop, and the aliases block_size,
  // n_positions/context, so a `loom train --model gpt` config and an HF config.json both work.
  nlohmann::json to_json() const;
  // `where` (the file it came from) starts every error message.
  static GPTConfig from_json(const nlohmann::json& j, const std::string& where = "GPT config");
  void validate() const;  // throws naming the bad field; also checks the weights fit in the available memory
  int64_t num_parameters() const;  // what the model will hold, computed from the config alone
};

class GPTAttention : public nn::Module {
 public:
  explicit GPTAttention(const GPTConfig& c);
  Tensor forward(const Tensor& x) override;  // (B, T, C), causal
  // Cached step: x (B, t, C) holds the tokens at positions [pos, pos + t); k_cache/v_cache (B, H, L, D) get
  // their keys/values written there and attention runs over [0, pos + t).
  Tensor forward_cached(const Tensor& x, Tensor& k_cache, Tensor& v_cache, int64_t pos);
  // Slot step: row i of x (n, t, C) continues slot rows[i] of the caches (S, H, L, D) at position pos[i];
  // each row attends over its own slot only.
  Tensor forward_slots(const Tensor& x, Tensor& k_cache, Tensor& v_cache, std::span<const int64_t> rows,
                       std::span<const int64_t> pos);
  std::string name() const override { return "GPT2Attention"; }

  int64_t n_head, n_embd;
  double dropout;
  std::shared_ptr<nn::Linear> c_attn, c_proj;  // c_attn: C -> 3C (q, k, v side by side, HF's order)
  std::shared_ptr<nn::Dropout> resid_dropout;
};

class GPTMLP : public nn::Module {
 public:
  explicit GPTMLP(const GPTConfig& c);
  Tensor forward(const Tensor& x) override;
  std::string name() const override { return "GPT2MLP"; }

  std::string approximate;  // "tanh" or "none"
  std::shared_ptr<nn::Linear> c_fc, c_proj;
  std::shared_ptr<nn::Dropout> dropout;
};

class GPTBlock : public nn::Module {
 public:
  explicit GPTBlock(const GPTConfig& c);
  Tensor forward(const Tensor& x) override;
  Tensor forward_cached(const Tensor& x, Tensor& k_cache, Tensor& v_cache, int64_t pos);
  Tensor forward_slots(const Tensor& x, Tensor& k_cache, Tensor& v_cache, std::span<const int64_t> rows,
                       std::span<const int64_t> pos);
  std::string name() const override { return "GPT2Block"; }

  std::shared_ptr<nn::LayerNorm> ln_1, ln_2;
  std::shared_ptr<GPTAttention> attn;
  std::shared_ptr<GPTMLP> mlp;
};

// The key/value cache: per layer (B, H, max_len, D) tensors allocated once, filled as tokens arrive.
struct GPTDecodeState : DecodeState {
  std::vector<Tensor> k, v;
  int64_t batch = 0, max_len = 0;
};
// The slot cache: per layer (slots, H, max_len, D), each slot at its own length.
struct GPTSlotState : SlotDecodeState {
  std::vector<Tensor> k, v;
};

class GPT : public LanguageModel {
 public:
  explicit GPT(const GPTConfig& c);
  Tensor forward(const Tensor& idx) override;
  // The final hidden states (B, T, C) after ln_f, before the LM head (forward = lm_head(hidden(idx))).
  Tensor hidden(const Tensor& idx);
  std::unique_ptr<DecodeState> start_decoding(int64_t batch, int64_t max_len = 0) override;
  Tensor decode_step(DecodeState& state, const Tensor& idx) override;
  std::unique_ptr<SlotDecodeState> start_slots(int64_t slots, int64_t max_len = 0) override;
  Tensor decode_slots(SlotDecodeState& state, std::span<const int64_t> rows, const Tensor& idx) override;
  int64_t context() const override { return cfg.n_positions; }
  int64_t vocab_size() const override { return cfg.vocab_size; }
  nlohmann::json config() const override { return cfg.to_json(); }
  // Hugging Face's GPT-2 layout (gpt_hf.h): config.json with HF keys, model.safetensors with HF names.
  void save(const std::string& dir, const io::Metadata& extra = {}) const override;
  std::string name() const override { return "GPT"; }
  // GPT-2's initialisation: weights N(0, r), residual projections N(0, r / sqrt(2 * n_layer)) with
  // r = initializer_range (0.02),
  // biases zero, LayerNorms one/zero.
  void reset_parameters();
  // The LM head's f32 weight (V, C): wte's when tied. A quantized model has none (its lm_head holds blocks):
  // an error naming that.
  Tensor lm_head_weight() const;

  GPTConfig cfg;
  std::shared_ptr<nn::Embedding> wte, wpe;
  std::shared_ptr<nn::Dropout> drop;
  std::shared_ptr<nn::ModuleList> h;
  std::shared_ptr<nn::LayerNorm> ln_f;
  // null when tied, except in a quantized model (gpt_quant.h): the head then holds the blocks, and wte is a
  // quant::QuantizedEmbedding reading them.
  std::shared_ptr<nn::Linear> lm_head;
  std::vector<std::shared_ptr<GPTBlock>> blocks;  // the same modules as h, typed

 private:
  Tensor embed(const Tensor& idx, int64_t pos);
};

}  // namespace loom::models
