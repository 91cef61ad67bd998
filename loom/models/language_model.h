// The interface every language model implements (the LSTM LM, GPT), so `loom train`, `loom generate` and
// `loom eval` drive any of them the same way.
//   auto lm = models::make_language_model({{"arch", "lstm-lm"}, {"vocab_size", 65}, ...});
//   Tensor logits = lm->forward(idx);                              // i64 (B, T) -> f32 (B, T, V)
//   auto st = lm->start_decoding(/*batch=*/2);  Tensor last = lm->decode_step(*st, prompt_ids);  // (B, V)
#pragma once
#include <cstdint>
#include <memory>
#include <span>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "loom/io/safetensors.h"
#include "loom/nn/module.h"

namespace loom::models {

// What a model carries between decode steps: the LSTM's (h, c), GPT's key/value cache.
struct DecodeState {
  virtual ~DecodeState() = default;
  int64_t position = 0;  // tokens consumed so far per sequence
};

// Per-sequence decode state for continuous batching: a fixed number of slots, each holding one sequence with
// its own length (GPT: its own rows of the key/value cache; LSTM: its own (h, c)). Sequences of different
// lengths decode together in one forward, and a slot is reused by the next request once reset.
struct SlotDecodeState {
  virtual ~SlotDecodeState() = default;
  std::vector<int64_t> lengths;  // tokens consumed so far, per slot
  int64_t max_len = 0;           // the most tokens a slot holds (0: unbounded)
  int64_t slots() const { return int64_t(lengths.size()); }
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
  // Slot decoding: start_slots allocates `slots` empty slots of up to `max_len` tokens (0 = the context);
  // decode_slots feeds idx i64 (n, t) to the n slots `rows` (distinct; each row continues at its own length)
  // and returns the logits of each row's last position, f32 (n, vocab_size). Prompts are fed in chunks
  // (n = 1, t > 1) and decode steps of many rows together (t = 1). reset_slot empties a slot for reuse.
  virtual std::unique_ptr<SlotDecodeState> start_slots(int64_t slots, int64_t max_len = 0) = 0;
  virtual Tensor decode_slots(SlotDecodeState& state, std::span<const int64_t> rows, const Tensor& idx) = 0;
  virtual void reset_slot(SlotDecodeState& state, int64_t slot);
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
// For decode_slots implementations: throws unless idx is i64 (rows.size(), t >= 1), the rows are distinct
// valid slots, and each has room for t more tokens.
void check_slot_rows(const SlotDecodeState& state, std::span<const int64_t> rows, const Tensor& idx, const char* who);

}  // namespace loom::models
