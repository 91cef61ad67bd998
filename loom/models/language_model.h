// The interface every language model implements (the LSTM LM, GPT), so `loom train`, `loom generate` and
// `loom eval` drive any of them the same way.
//   auto lm = models::make_language_model({{"arch", "lstm-lm"}, {"vocab_size", 65}, ...});
//   Tensor logits = lm->forward(idx);                              // i64 (B, T) -> f32 (B, T, V)
//   auto st = lm->start_decoding(/*batch=*/2);  Tensor last = lm->decode_step(*st, prompt_ids);  // (B, V)
#pragma once
#include <cstdint>
#include <memory>
#include <string>

#include <nlohmann/json.hpp>

#include "loom/io/safetensors.h"
#include "loom/nn/module.h"

namespace loom::models {

// What a model carries between decode steps: the LSTM's (h, c), GPT's key/value cache.
struct DecodeState {
  virtual ~DecodeState() = default;
  int64_t position = 0;  // tokens consumed so far per sequence
};

class LanguageModel : public nn::Module {
 public:
  // idx: i64 (B, T) token ids -> logits f32 (B, T, vocab_size).
  Tensor forward(const Tensor& idx) override = 0;
  // Incremental decoding without recomputing the prefix. `max_len` bounds the total tokens per sequence
  // (a KV cache sizes itself by it; 0 = the model's context).
  virtual std::unique_ptr<DecodeState> start_decoding(int64_t batch, int64_t max_len = 0) = 0;
  // Feeds idx: i64 (B, t) (the whole prompt on the first call, then one token) and returns the logits of
  // the last position, f32 (B, vocab_size). Runs without building a graph.
  virtual Tensor decode_step(DecodeState& state, const Tensor& idx) = 0;
  // The longest sequence the model accepts (GPT: its positions); 0 when unbounded (LSTM).
  virtual int64_t context() const = 0;
  virtual int64_t vocab_size() const = 0;
  // The architecture as JSON, {"arch": "lstm-lm", ...}; make_language_model(config()) rebuilds it.
  virtual nlohmann::json config() const = 0;
  // Writes the model into folder `dir` (created if needed, files replaced atomically): by default
  // model.safetensors (state dict + `extra` metadata) and config.json (config()). GPT overrides this to
  // write Hugging Face's GPT-2 layout.
  virtual void save(const std::string& dir, const io::Metadata& extra = {}) const;
};
using LanguageModelPtr = std::shared_ptr<LanguageModel>;

// Builds an untrained model from config["arch"] ("lstm-lm", "gpt"); throws naming an unknown arch.
// `where` names the config's source in error messages (the file, or the flags it was built from).
LanguageModelPtr make_language_model(const nlohmann::json& config, const std::string& where = "model config");
// Reloads what LanguageModel::save wrote, or a Hugging Face GPT-2 folder (config.json with n_layer).
LanguageModelPtr load_language_model(const std::string& dir);

}  // namespace loom::models
