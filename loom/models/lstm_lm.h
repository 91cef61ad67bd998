// A character/token-level LSTM language model: Embedding -> multi-layer LSTM -> Linear, with PyTorch's
// parameter names (emb.weight, rnn.weight_ih_l0, ..., out.weight), so a state dict loads in
//   class M(nn.Module): emb = nn.Embedding(V, E); rnn = nn.LSTM(E, H, L, batch_first=True); out = nn.Linear(H, V)
//   auto lm = std::make_shared<models::LSTMLM>(models::LSTMLMConfig{.vocab_size = 65, .embedding = 64});
#pragma once
#include <memory>

#include "loom/models/language_model.h"
#include "loom/nn/embedding.h"
#include "loom/nn/linear.h"
#include "loom/nn/rnn.h"

namespace loom::models {

struct LSTMLMConfig {
  int64_t vocab_size = 0;
  int64_t embedding = 64;
  int64_t layers = 2;
  int64_t hidden = 256;
  double dropout = 0.0;  // between LSTM layers, training mode only

  nlohmann::json to_json() const;
  // Reads the keys to_json writes (missing ones keep their defaults); throws naming a bad value.
  // `where` (the file) starts the messages; sizes are bounded (core/limits.h) and the weights must fit in memory.
  static LSTMLMConfig from_json(const nlohmann::json& j, const std::string& where = "lstm-lm config");
  int64_t num_parameters() const;
};

class LSTMLM : public LanguageModel {
 public:
  explicit LSTMLM(const LSTMLMConfig& c);

  Tensor forward(const Tensor& idx) override;
  std::unique_ptr<DecodeState> start_decoding(int64_t batch, int64_t max_len = 0) override;
  Tensor decode_step(DecodeState& state, const Tensor& idx) override;
  std::unique_ptr<SlotDecodeState> start_slots(int64_t slots, int64_t max_len = 0) override;
  Tensor decode_slots(SlotDecodeState& state, std::span<const int64_t> rows, const Tensor& idx) override;
  int64_t context() const override { return 0; }
  int64_t vocab_size() const override { return cfg_.vocab_size; }
  nlohmann::json config() const override { return cfg_.to_json(); }

  std::shared_ptr<nn::Embedding> emb;
  std::shared_ptr<nn::LSTM> rnn;
  std::shared_ptr<nn::Linear> out;

 private:
  LSTMLMConfig cfg_;
};

}  // namespace loom::models
