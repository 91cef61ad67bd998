// An attention encoder-decoder (Bahdanau et al. 2015 / Luong et al. 2015) over token ids.
//   models::Seq2Seq net({.src_vocab = 99, .tgt_vocab = 99, .embed = 32, .hidden = 64, .attention = "dot"});
//   Tensor logits = net.forward(src, src_lengths, tgt, /*teacher_forcing_ratio=*/1.0);   // (B, T - 1, V)
//   auto out = net.greedy_decode(src, src_lengths, 12);  auto best = net.beam_search(src1, 5, 12)[0].tokens;
// src: int64 (B, S) padded with pad; src_lengths: int64 (B) (sequence_lengths(src) when undefined). tgt: int64
// (B, T) = <bos> y1 .. yn <eos> <pad>...; logits[:, t] predicts tgt[:, t + 1], so the loss is
// sequence_cross_entropy(logits, tgt[:, 1:]). The encoder is a bidirectional GRU; its last states go through a
// tanh bridge to start the decoder GRU (width 2 * hidden, the width of the encoder outputs it attends over).
// "dot" / "general" (Luong): s_t = GRU(emb(y_{t-1}), s_{t-1}), c_t = attend(s_t); with full teacher forcing
// the whole target runs as one GRU call and one batched attention. "bahdanau": c_t = attend(s_{t-1}),
// s_t = GRU([emb(y_{t-1}); c_t], s_{t-1}), one step at a time. Both: logits = out(tanh(combine([c_t; s_t]))).
#pragma once
#include <memory>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "loom/core/generator.h"
#include "loom/models/beam_search.h"
#include "loom/nn/embedding.h"
#include "loom/nn/linear.h"
#include "loom/nn/module.h"
#include "loom/nn/rnn.h"
#include "loom/nn/rnn_attention.h"

namespace loom::models {

struct Seq2SeqOptions {
  int64_t src_vocab = 0, tgt_vocab = 0;
  int64_t embed = 64;              // embedding width (source and target)
  int64_t hidden = 128;            // encoder GRU width per direction; the decoder is 2 * hidden wide
  std::string attention = "dot";   // "dot", "general" or "bahdanau"
  int64_t attention_hidden = 0;    // bahdanau's additive layer width (0: 2 * hidden)
  int64_t pad = 0, bos = 2, eos = 3;

  nlohmann::json to_json() const;
  // `where` (the file) starts the error messages; every field is type- and range-checked.
  static Seq2SeqOptions from_json(const nlohmann::json& j, const std::string& where = "seq2seq config");
};

struct EncoderOutput {
  Tensor outputs;       // (B, S, 2 * hidden), zero past each length
  Tensor hidden;        // (B, 2 * hidden): the decoder's first state
  Tensor padding_mask;  // bool (B, S), true past each length
};

class Encoder : public nn::Module {
 public:
  explicit Encoder(const Seq2SeqOptions& o);
  EncoderOutput encode(const Tensor& src, const Tensor& lengths);

  std::shared_ptr<nn::Embedding> embedding;
  std::shared_ptr<nn::GRU> rnn;
  std::shared_ptr<nn::Linear> bridge;
};

// What attention needs of the source, computed once per batch.
struct Memory {
  Tensor keys, projected_keys, padding_mask;
};

struct DecoderStep {
  Tensor logits;   // (B, V)
  Tensor hidden;   // (B, D)
  Tensor weights;  // (B, S) attention
};

class AttnDecoder : public nn::Module {
 public:
  explicit AttnDecoder(const Seq2SeqOptions& o);
  Memory memory(const EncoderOutput& enc);
  // One step from the previous tokens (B) and state (B, D).
  DecoderStep step(const Tensor& prev_tokens, const Tensor& hidden, const Memory& m);
  // Every step at once from the given inputs (B, T) (Luong attention only): (B, T, V).
  Tensor forward_all(const Tensor& inputs, const Tensor& hidden, const Memory& m);
  bool parallel() const { return options_.attention != "bahdanau"; }

  std::shared_ptr<nn::Embedding> embedding;
  std::shared_ptr<nn::GRU> rnn;
  std::shared_ptr<nn::RNNAttention> attention;
  std::shared_ptr<nn::Linear> combine, out;

 private:
  Tensor head(const Tensor& context, const Tensor& state);  // out(tanh(combine([c; s])))
  Seq2SeqOptions options_;
};

class Seq2Seq : public nn::Module {
 public:
  explicit Seq2Seq(const Seq2SeqOptions& o);

  // Training: logits (B, T - 1, V) for tgt[:, 1:]. At each step the decoder reads the true previous token
  // with probability teacher_forcing_ratio (one draw per step for the batch, from gen or the global
  // generator), else its own previous argmax.
  Tensor forward(const Tensor& src, const Tensor& src_lengths, const Tensor& tgt, double teacher_forcing_ratio = 1.0,
                 Generator* gen = nullptr);
  Tensor forward(const Tensor&) override;  // throws: needs the target too

  // Without gradients. Token ids without <bos> and <eos>, at most max_len tokens each.
  std::vector<std::vector<int64_t>> greedy_decode(const Tensor& src, const Tensor& src_lengths, int64_t max_len);
  // One source (S) or (1, S); best first. length_penalty as in BeamSearchOptions.
  std::vector<Hypothesis> beam_search(const Tensor& src, int64_t beam, int64_t max_len, double length_penalty = 0.0);

  const Seq2SeqOptions& options() const { return options_; }
  // model.safetensors (state dict, with the options as metadata "loom_seq2seq_config") and config.json.
  void save(const std::string& dir, const nlohmann::json& extra_config = {}) const;

  std::shared_ptr<Encoder> encoder;
  std::shared_ptr<AttnDecoder> decoder;

 private:
  Seq2SeqOptions options_;
};

// Reads what Seq2Seq::save wrote (dir/config.json + dir/model.safetensors).
std::shared_ptr<Seq2Seq> load_seq2seq(const std::string& dir);

}  // namespace loom::models
