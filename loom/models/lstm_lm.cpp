#include "loom/models/lstm_lm.h"

#include "loom/autograd/grad_mode.h"
#include "loom/core/error.h"
#include "loom/core/limits.h"
#include "loom/io/json_fields.h"
#include "loom/ops/creation.h"
#include "loom/ops/shape.h"

namespace loom::models {

namespace {

// The LSTM's (h, c) between decode steps; undefined until the first step (zeros, as nn.LSTM's default).
struct LSTMDecodeState : DecodeState {
  int64_t batch = 0;
  Tensor h, c;  // (layers, B, H)
};

// (h, c) per slot; a slot of length 0 starts from zeros whatever its rows hold.
struct LSTMSlotState : SlotDecodeState {
  Tensor h, c;  // (layers, slots, H)
};

void check_idx(const Tensor& idx, const char* where) {
  LOOM_CHECK(idx.dtype() == DType::i64 && idx.dim() == 2, "LSTMLM::", where,
             ": expected token ids as an int64 (B, T) tensor, got ", idx.dtype(), " with shape ", idx.shape());
}

}  // namespace

nlohmann::json LSTMLMConfig::to_json() const {
  return {{"arch", "lstm-lm"}, {"vocab_size", vocab_size}, {"embedding", embedding},
          {"layers", layers},  {"hidden", hidden},         {"dropout", dropout}};
}

LSTMLMConfig LSTMLMConfig::from_json(const nlohmann::json& j, const std::string& where) {
  LSTMLMConfig c;
  // Types and sizes checked before anything is allocated, naming the file and field (layers = 1e9 would
  // otherwise allocate until the machine runs out of memory).
  const io::JsonFields f(j, where);
  c.vocab_size = f.required_integer("vocab_size", 1, limits::kMaxVocab);
  c.embedding = f.integer("embedding", c.embedding, 1, limits::kMaxWidth);
  c.layers = f.integer("layers", c.layers, 1, limits::kMaxLayers);
  c.hidden = f.integer("hidden", c.hidden, 1, limits::kMaxWidth);
  c.dropout = f.number("dropout", c.dropout, 0.0, 0.99);
  check_fits_in_memory(8.0 * double(c.num_parameters()),
                       where + ": an lstm-lm with layers=" + std::to_string(c.layers) + ", hidden=" +
                           std::to_string(c.hidden) + ", vocab_size=" + std::to_string(c.vocab_size) + " (" +
                           std::to_string(c.num_parameters()) + " parameters)");
  return c;
}

int64_t LSTMLMConfig::num_parameters() const {
  int64_t n = vocab_size * embedding + hidden * vocab_size + vocab_size;  // embedding, head
  for (int64_t l = 0; l < layers; ++l) n += 4 * hidden * ((l == 0 ? embedding : hidden) + hidden + 2);
  return n;
}

LSTMLM::LSTMLM(const LSTMLMConfig& c) : cfg_(LSTMLMConfig::from_json(c.to_json())) {
  emb = register_module("emb", std::make_shared<nn::Embedding>(
                                   nn::EmbeddingOptions{.num_embeddings = c.vocab_size, .embedding_dim = c.embedding}));
  rnn = register_module("rnn", std::make_shared<nn::LSTM>(nn::LSTMOptions{.input_size = c.embedding,
                                                                          .hidden_size = c.hidden,
                                                                          .num_layers = c.layers,
                                                                          .batch_first = true,
                                                                          .dropout = c.dropout}));
  out = register_module("out", std::make_shared<nn::Linear>(nn::LinearOptions{.in = c.hidden, .out = c.vocab_size}));
}

Tensor LSTMLM::forward(const Tensor& idx) {
  check_idx(idx, "forward");
  return (*out)((*rnn)((*emb)(idx)));
}

std::unique_ptr<DecodeState> LSTMLM::start_decoding(int64_t batch, int64_t /*max_len*/) {
  LOOM_CHECK(batch > 0, "LSTMLM::start_decoding: batch must be > 0, got ", batch);
  auto s = std::make_unique<LSTMDecodeState>();
  s->batch = batch;
  return s;
}

Tensor LSTMLM::decode_step(DecodeState& state, const Tensor& idx) {
  check_idx(idx, "decode_step");
  auto* s = dynamic_cast<LSTMDecodeState*>(&state);
  LOOM_CHECK(s, "LSTMLM::decode_step: the state was not made by this model's start_decoding");
  LOOM_CHECK(idx.size(0) == s->batch && idx.size(1) > 0, "LSTMLM::decode_step: expected ids of shape (", s->batch,
             ", t >= 1), got ", idx.shape());
  NoGradGuard ng;
  nn::LSTMOutput r = rnn->forward((*emb)(idx), s->h, s->c);
  s->h = r.h_n, s->c = r.c_n;
  s->position += idx.size(1);
  // Only the last position's logits are needed: project (B, H) instead of (B, t, H).
  return (*out)(r.output.select(1, idx.size(1) - 1).contiguous());
}

}  // namespace loom::models

namespace loom::models {

std::unique_ptr<SlotDecodeState> LSTMLM::start_slots(int64_t slots, int64_t max_len) {
  LOOM_CHECK(slots > 0, "LSTMLM::start_slots: slots must be > 0, got ", slots);
  LOOM_CHECK(max_len >= 0, "LSTMLM::start_slots: max_len must be >= 0 (0: unbounded), got ", max_len);
  auto s = std::make_unique<LSTMSlotState>();
  s->lengths.assign(size_t(slots), 0);
  s->max_len = max_len;
  const DType dt = emb->weight.dtype();
  s->h = zeros({cfg_.layers, slots, cfg_.hidden}, {.dtype = dt});
  s->c = zeros({cfg_.layers, slots, cfg_.hidden}, {.dtype = dt});
  return s;
}

Tensor LSTMLM::decode_slots(SlotDecodeState& state, std::span<const int64_t> rows, const Tensor& idx) {
  auto* s = dynamic_cast<LSTMSlotState*>(&state);
  LOOM_CHECK(s, "LSTMLM::decode_slots: the state was not made by this model's start_slots");
  check_slot_rows(state, rows, idx, "LSTMLM::decode_slots");
  NoGradGuard ng;
  // Gather the rows' states into (layers, n, H); an empty slot starts from zeros.
  std::vector<Tensor> hs, cs;
  for (int64_t r : rows) {
    const bool fresh = s->lengths[size_t(r)] == 0;
    hs.push_back(fresh ? zeros({cfg_.layers, 1, cfg_.hidden}, {.dtype = s->h.dtype()}) : s->h.narrow(1, r, 1));
    cs.push_back(fresh ? zeros({cfg_.layers, 1, cfg_.hidden}, {.dtype = s->c.dtype()}) : s->c.narrow(1, r, 1));
  }
  Tensor h0 = (hs.size() == 1 ? hs[0] : cat(hs, 1)).contiguous(), c0 = (cs.size() == 1 ? cs[0] : cat(cs, 1)).contiguous();
  nn::LSTMOutput out_state = rnn->forward((*emb)(idx), h0, c0);
  for (size_t i = 0; i < rows.size(); ++i) {
    s->h.narrow(1, rows[i], 1).copy_(out_state.h_n.narrow(1, int64_t(i), 1));
    s->c.narrow(1, rows[i], 1).copy_(out_state.c_n.narrow(1, int64_t(i), 1));
    s->lengths[size_t(rows[i])] += idx.size(1);
  }
  return (*out)(out_state.output.select(1, idx.size(1) - 1).contiguous());
}

}  // namespace loom::models
