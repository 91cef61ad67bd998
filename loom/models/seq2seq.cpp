#include "loom/models/seq2seq.h"

#include <filesystem>
#include <fstream>

#include "loom/autograd/grad_mode.h"
#include "loom/core/error.h"
#include "loom/core/limits.h"
#include "loom/io/json_fields.h"
#include "loom/io/safetensors.h"
#include "loom/nn/sequence_loss.h"
#include "loom/ops/ops.h"

namespace loom::models {

namespace fs = std::filesystem;
using json = nlohmann::json;

json Seq2SeqOptions::to_json() const {
  return {{"arch", "seq2seq"}, {"src_vocab", src_vocab}, {"tgt_vocab", tgt_vocab}, {"embed", embed},
          {"hidden", hidden},  {"attention", attention}, {"attention_hidden", attention_hidden},
          {"pad", pad},        {"bos", bos},             {"eos", eos}};
}

Seq2SeqOptions Seq2SeqOptions::from_json(const json& j, const std::string& where) {
  // Typed, bounded reads naming the file and field (issue 17: no raw json type_error, no unbounded sizes).
  const io::JsonFields f(j, where);
  Seq2SeqOptions o;
  o.src_vocab = f.required_integer("src_vocab", 1, limits::kMaxVocab);
  o.tgt_vocab = f.required_integer("tgt_vocab", 1, limits::kMaxVocab);
  o.embed = f.required_integer("embed", 1, limits::kMaxWidth);
  o.hidden = f.required_integer("hidden", 1, limits::kMaxWidth);
  o.attention = f.required_string("attention");
  o.attention_hidden = f.integer("attention_hidden", 0, 0, limits::kMaxWidth);
  o.pad = f.integer("pad", 0, 0, limits::kMaxVocab);
  o.bos = f.integer("bos", 2, 0, limits::kMaxVocab);
  o.eos = f.integer("eos", 3, 0, limits::kMaxVocab);
  const double h = double(o.hidden), params = double(o.src_vocab + o.tgt_vocab) * double(o.embed) +
                                              12.0 * h * (double(o.embed) + 2.0 * h) + 4.0 * h * double(o.tgt_vocab);
  check_fits_in_memory(8.0 * params, where + ": a seq2seq model with hidden=" + std::to_string(o.hidden));
  return o;
}

namespace {

void check_options(const Seq2SeqOptions& o) {
  LOOM_CHECK(o.src_vocab > 0 && o.tgt_vocab > 0 && o.embed > 0 && o.hidden > 0,
             "Seq2Seq: src_vocab, tgt_vocab, embed and hidden must be positive");
  LOOM_CHECK(o.attention == "dot" || o.attention == "general" || o.attention == "bahdanau",
             "Seq2Seq: attention must be \"dot\", \"general\" or \"bahdanau\", got \"", o.attention, "\"");
  for (int64_t id : {o.pad, o.bos, o.eos})
    LOOM_CHECK(id >= 0 && id < o.tgt_vocab && id < o.src_vocab, "Seq2Seq: special id ", id,
               " is outside the vocabularies");
}

void check_ids(const Tensor& ids, int64_t vocab, const char* what) {
  LOOM_CHECK(ids.defined() && ids.dim() == 2 && ids.dtype() == DType::i64, "Seq2Seq: ", what,
             " must be int64 (B, L), got ", ids.defined() ? ids.shape() : Shape{});
  const Tensor c = ids.to(Device{}).contiguous();
  const int64_t* p = c.data<int64_t>();
  for (int64_t i = 0; i < c.numel(); ++i)
    LOOM_CHECK(p[i] >= 0 && p[i] < vocab, "Seq2Seq: ", what, " holds id ", p[i], ", outside the vocabulary of ", vocab);
}

}  // namespace

// ---- encoder

Encoder::Encoder(const Seq2SeqOptions& o) {
  embedding = register_module(
      "embedding", std::make_shared<nn::Embedding>(nn::EmbeddingOptions{o.src_vocab, o.embed, o.pad}));
  rnn = register_module("rnn", std::make_shared<nn::GRU>(nn::GRUOptions{
                                   .input_size = o.embed, .hidden_size = o.hidden, .batch_first = true,
                                   .bidirectional = true}));
  bridge = register_module("bridge", std::make_shared<nn::Linear>(nn::LinearOptions{2 * o.hidden, 2 * o.hidden}));
}

EncoderOutput Encoder::encode(const Tensor& src, const Tensor& lengths) {
  const int64_t S = src.size(1);
  // Packed semantics: the backward direction starts at each sequence's last real token, and the outputs past
  // it are zero, so padding never leaks into the keys or the first decoder state.
  nn::RNNOutput r = rnn->forward((*embedding)(src), {}, lengths);
  Tensor last = cat({r.h_n.select(0, 0), r.h_n.select(0, 1)}, 1);  // (B, 2H): forward and backward
  return {r.output, tanh((*bridge)(last)), logical_not(sequence_mask(lengths, S))};
}

// ---- decoder

AttnDecoder::AttnDecoder(const Seq2SeqOptions& o) : options_(o) {
  const int64_t D = 2 * o.hidden;
  const bool additive = o.attention == "bahdanau";
  embedding = register_module(
      "embedding", std::make_shared<nn::Embedding>(nn::EmbeddingOptions{o.tgt_vocab, o.embed, o.pad}));
  rnn = register_module("rnn", std::make_shared<nn::GRU>(nn::GRUOptions{
                                   .input_size = o.embed + (additive ? D : 0), .hidden_size = D, .batch_first = true}));
  if (additive)
    attention = register_module("attention", std::make_shared<nn::BahdanauAttention>(nn::BahdanauAttentionOptions{
                                                 D, D, o.attention_hidden > 0 ? o.attention_hidden : D}));
  else
    attention = register_module(
        "attention", std::make_shared<nn::LuongAttention>(nn::LuongAttentionOptions{D, D, o.attention}));
  combine = register_module("combine", std::make_shared<nn::Linear>(nn::LinearOptions{2 * D, D}));
  out = register_module("out", std::make_shared<nn::Linear>(nn::LinearOptions{D, o.tgt_vocab}));
}

Memory AttnDecoder::memory(const EncoderOutput& enc) {
  return {enc.outputs, attention->project_keys(enc.outputs), enc.padding_mask};
}

Tensor AttnDecoder::head(const Tensor& context, const Tensor& state) {
  return (*out)(tanh((*combine)(cat({context, state}, -1))));
}

DecoderStep AttnDecoder::step(const Tensor& prev, const Tensor& hidden, const Memory& m) {
  Tensor e = (*embedding)(prev);  // (B, E)
  if (!parallel()) {
    nn::AttentionOutput a = attention->forward(hidden, m.keys, m.padding_mask, m.projected_keys);
    Tensor s = rnn->forward(cat({e, a.context}, 1).unsqueeze(1), hidden.unsqueeze(0)).h_n.squeeze(0);
    return {head(a.context, s), s, a.weights};
  }
  Tensor s = rnn->forward(e.unsqueeze(1), hidden.unsqueeze(0)).h_n.squeeze(0);
  nn::AttentionOutput a = attention->forward(s, m.keys, m.padding_mask, m.projected_keys);
  return {head(a.context, s), s, a.weights};
}

Tensor AttnDecoder::forward_all(const Tensor& inputs, const Tensor& hidden, const Memory& m) {
  LOOM_CHECK(parallel(), "AttnDecoder::forward_all: Bahdanau attention feeds each context into the next step; "
             "use step()");
  // One GRU call over the whole target (the fused recurrent kernel), then attention for all steps as two bmm.
  Tensor states = rnn->forward((*embedding)(inputs), hidden.unsqueeze(0)).output;  // (B, T, D)
  nn::AttentionOutput a = attention->forward(states, m.keys, m.padding_mask, m.projected_keys);
  return head(a.context, states);
}

// ---- the model

Seq2Seq::Seq2Seq(const Seq2SeqOptions& o) : options_(o) {
  check_options(o);
  encoder = register_module("encoder", std::make_shared<Encoder>(o));
  decoder = register_module("decoder", std::make_shared<AttnDecoder>(o));
}

Tensor Seq2Seq::forward(const Tensor&) {
  LOOM_FAIL("Seq2Seq: call forward(src, src_lengths, tgt, teacher_forcing_ratio)");
}

Tensor Seq2Seq::forward(const Tensor& src, const Tensor& src_lengths, const Tensor& tgt, double ratio,
                        Generator* gen) {
  check_ids(src, options_.src_vocab, "src");
  check_ids(tgt, options_.tgt_vocab, "tgt");
  LOOM_CHECK(tgt.size(0) == src.size(0) && tgt.size(1) >= 2, "Seq2Seq: tgt must be (B, T) with T >= 2 (<bos> ... "
             "<eos>) and the batch of src ", src.size(0), ", got ", tgt.shape());
  LOOM_CHECK(ratio >= 0 && ratio <= 1, "Seq2Seq: teacher_forcing_ratio must be in [0, 1], got ", ratio);
  const Tensor lengths = src_lengths.defined() ? src_lengths : sequence_lengths(src, options_.pad);
  EncoderOutput enc = encoder->encode(src, lengths);
  Memory m = decoder->memory(enc);
  const int64_t T = tgt.size(1) - 1;
  const Tensor inputs = tgt.slice(1, 0, T).contiguous();
  if (ratio >= 1 && decoder->parallel()) return decoder->forward_all(inputs, enc.hidden, m);

  Generator& g = gen ? *gen : default_generator();
  std::vector<Tensor> logits;
  Tensor h = enc.hidden, tok = inputs.select(1, 0).contiguous();
  for (int64_t t = 0; t < T; ++t) {
    if (t > 0) {
      const bool forced = ratio >= 1 || (ratio > 0 && g.next_double() < ratio);
      tok = forced ? inputs.select(1, t).contiguous() : argmax(logits.back().detach(), -1);
    }
    DecoderStep s = decoder->step(tok, h, m);
    h = s.hidden;
    logits.push_back(s.logits);
  }
  return stack(logits, 1);
}

std::vector<std::vector<int64_t>> Seq2Seq::greedy_decode(const Tensor& src, const Tensor& src_lengths,
                                                         int64_t max_len) {
  check_ids(src, options_.src_vocab, "src");
  LOOM_CHECK(max_len >= 1, "Seq2Seq::greedy_decode: max_len must be >= 1, got ", max_len);
  NoGradGuard no_grad;
  const int64_t B = src.size(0);
  const Tensor lengths = src_lengths.defined() ? src_lengths : sequence_lengths(src, options_.pad);
  EncoderOutput enc = encoder->encode(src, lengths);
  Memory m = decoder->memory(enc);
  std::vector<std::vector<int64_t>> out(static_cast<size_t>(B));
  std::vector<bool> done(size_t(B), false);
  Tensor h = enc.hidden, tok = full({B}, double(options_.bos), {.dtype = DType::i64});
  for (int64_t t = 0, left = B; t < max_len && left > 0; ++t) {
    DecoderStep s = decoder->step(tok, h, m);
    h = s.hidden;
    tok = argmax(s.logits, -1).contiguous();
    const Tensor tok_host = tok.to(Device{});
    const int64_t* p = tok_host.data<int64_t>();
    for (int64_t b = 0; b < B; ++b) {
      if (done[size_t(b)]) continue;
      if (p[b] == options_.eos)
        done[size_t(b)] = true, --left;
      else
        out[size_t(b)].push_back(p[b]);
    }
  }
  return out;
}

std::vector<Hypothesis> Seq2Seq::beam_search(const Tensor& src, int64_t beam, int64_t max_len, double length_penalty) {
  const Tensor s2 = src.dim() == 1 ? src.unsqueeze(0) : src;
  check_ids(s2, options_.src_vocab, "src");
  LOOM_CHECK(s2.size(0) == 1, "Seq2Seq::beam_search: one source at a time, got a batch of ", s2.size(0));
  NoGradGuard no_grad;
  EncoderOutput enc = encoder->encode(s2, sequence_lengths(s2, options_.pad));
  const Memory m1 = decoder->memory(enc);
  Tensor h = enc.hidden;
  BeamStepFn step = [&](const std::vector<int64_t>& parents, const std::vector<int64_t>& tokens) {
    const int64_t K = int64_t(parents.size());
    const Tensor rows = tensor(parents), first = zeros({K}, {.dtype = DType::i64});
    Memory m{index_select(m1.keys, 0, first), index_select(m1.projected_keys, 0, first),
             index_select(m1.padding_mask, 0, first)};
    DecoderStep s = decoder->step(tensor(tokens), index_select(h, 0, rows), m);
    h = s.hidden;
    return log_softmax(s.logits, -1);
  };
  return models::beam_search(step, {.beam = beam, .max_len = max_len, .length_penalty = length_penalty,
                                    .bos = options_.bos, .eos = options_.eos});
}

void Seq2Seq::save(const std::string& dir, const json& extra_config) const {
  fs::create_directories(dir);
  json cfg = options_.to_json();
  for (const auto& [k, v] : extra_config.items()) cfg[k] = v;
  io::save_safetensors((fs::path(dir) / "model.safetensors").string(), state_dict().items(),
                       {{"loom_seq2seq_config", options_.to_json().dump()}});
  io::write_file_atomic((fs::path(dir) / "config.json").string(), cfg.dump(2) + "\n");
}

std::shared_ptr<Seq2Seq> load_seq2seq(const std::string& dir) {
  const fs::path cfg_path = fs::path(dir) / "config.json";
  LOOM_CHECK(fs::exists(cfg_path), cfg_path.string(), ": not found (expected a folder written by "
             "`loom train --model seq2seq`)");
  const json cfg = io::read_json_file(cfg_path.string());
  const std::string arch = io::JsonFields(cfg, cfg_path.string()).string("arch", "");
  LOOM_CHECK(arch == "seq2seq", cfg_path.string(), ": describes arch '", arch,
             "', not seq2seq (expected a folder written by `loom train --model seq2seq`)");
  auto model = std::make_shared<Seq2Seq>(Seq2SeqOptions::from_json(cfg, cfg_path.string()));
  const std::string weights = (fs::path(dir) / "model.safetensors").string();
  auto file = io::load_safetensors(weights);
  nn::StateDict sd;
  for (auto& [name, t] : file.tensors) sd.insert(name, t);
  try {
    model->load_state_dict(sd, true);
  } catch (const Error& e) {
    LOOM_FAIL(weights, ": the weights do not fit the model described by ", cfg_path.string(), ": ", e.what());
  }
  model->eval();
  return model;
}

}  // namespace loom::models
