#include "loom/runtime/session.h"

#include <algorithm>

#include "loom/autograd/grad_mode.h"
#include "loom/core/error.h"
#include "loom/ops/creation.h"

namespace loom::runtime {

void check_generation_options(const GenerationOptions& o) {
  models::check_sampling_options(o.sampling);
  LOOM_CHECK(o.max_new_tokens >= 0, "generation: max_new_tokens must be >= 0, got ", o.max_new_tokens);
}

size_t utf8_complete_prefix(const std::string& s) {
  // Walk back over at most 3 continuation bytes to the lead byte; keep it only if its sequence is complete.
  size_t i = s.size(), back = 0;
  while (i > 0 && back < 4 && (static_cast<unsigned char>(s[i - 1]) & 0xC0) == 0x80) --i, ++back;
  if (i == 0) return s.size();
  const unsigned char lead = static_cast<unsigned char>(s[i - 1]);
  const size_t need = lead >= 0xF0 ? 4 : lead >= 0xE0 ? 3 : lead >= 0xC0 ? 2 : 1;
  return need > back + 1 ? i - 1 : s.size();
}

std::vector<int64_t> encode_prompt(const Run& run, const std::string& prompt) {
  LOOM_CHECK(run.tokenizer, "generation: the run has no tokenizer (is it a language model?)");
  std::vector<int64_t> ids = run.tokenizer->encode(prompt);
  if (ids.empty() && run.eot >= 0) ids.push_back(run.eot);  // GPT-2 starts unconditioned text after <|endoftext|>
  LOOM_CHECK(!ids.empty(), "generation: the prompt is empty; give at least one character");
  return ids;
}

Sequence::Sequence(const Run& run, std::vector<int64_t> prompt, GenerationOptions o, TextCallback on_text,
                   int64_t capacity)
    : run_(run), capacity_(capacity), o_(std::move(o)), on_text_(std::move(on_text)), gen_(o_.seed),
      history_(std::move(prompt)), stops_(o_.stop) {
  check_generation_options(o_);
  LOOM_CHECK(run.lm && run.tokenizer, "generation: the run is not a language model");
  LOOM_CHECK(!history_.empty(), "generation: the prompt has no tokens");
  const int64_t V = run.lm->vocab_size();
  for (int64_t t : history_)
    LOOM_CHECK(t >= 0 && t < V, "generation: token id ", t, " in the prompt is outside the vocabulary [0, ", V, ")");
  result_.prompt_tokens = int64_t(history_.size());
  window();
  if (o_.max_new_tokens == 0) finish("length");
}

void Sequence::window() {
  const size_t n = capacity_ > 0 ? std::min<size_t>(history_.size(), size_t(capacity_)) : history_.size();
  pending.assign(history_.end() - ptrdiff_t(n), history_.end());
}

void Sequence::finish(const std::string& reason) {
  if (finished_) return;
  finished_ = true;
  pending.clear();
  result_.finish_reason = reason;
  const std::string full = decode_raw(*run_.tokenizer, text_ids_);
  result_.text = stops_.result(full);
  if (reason != "cancelled" && on_text_) {
    const std::string rest = stops_.finish(full);  // what was held back as a possible stop string
    if (!rest.empty()) on_text_(rest);
  }
}

void Sequence::cancel() { finish("cancelled"); }

bool Sequence::on_logits(std::span<const float> logits, int64_t slot_length) {
  LOOM_CHECK(!finished_, "Sequence::on_logits: the sequence has finished");
  restart_ = false;
  const int64_t next = models::sample_token(logits, o_.sampling, history_, gen_);
  history_.push_back(next);
  result_.tokens.push_back(next);
  if (o_.stop_at_eot && next == run_.eot) {
    finish("stop");
    return false;
  }
  text_ids_.push_back(next);
  const std::string full = decode_raw(*run_.tokenizer, text_ids_);
  const std::string piece = stops_.push(full.substr(0, utf8_complete_prefix(full)));
  if (!piece.empty() && on_text_ && !on_text_(piece)) {
    finish("cancelled");
    return false;
  }
  if (stops_.stopped()) {
    finish("stop");
    return false;
  }
  if (generated() >= o_.max_new_tokens) {
    finish("length");
    return false;
  }
  if (capacity_ > 0 && slot_length >= capacity_) {
    restart_ = true;  // the slot is full: re-read the last capacity_ tokens
    window();
  } else {
    pending.assign(1, next);
  }
  return true;
}

GenerationSession::GenerationSession(const Run& run) : run_(run) {
  LOOM_CHECK(run.kind == Run::Kind::language_model && run.lm && run.tokenizer,
             "GenerationSession: ", run.path, " is not a language-model run");
  state_ = run.lm->start_slots(1, run.lm->context());
}

GenerationResult GenerationSession::generate(const std::string& prompt, const GenerationOptions& o,
                                             const TextCallback& on_text) {
  return generate(encode_prompt(run_, prompt), o, on_text);
}

GenerationResult GenerationSession::generate(const std::vector<int64_t>& prompt, const GenerationOptions& o,
                                             const TextCallback& on_text) {
  Sequence seq(run_, prompt, o, on_text, state_->max_len);
  NoGradGuard ng;
  const int64_t row = 0;
  run_.lm->reset_slot(*state_, row);
  while (!seq.finished()) {
    Tensor logits = run_.lm->decode_slots(*state_, {&row, 1}, tensor(seq.pending, {1, int64_t(seq.pending.size())}));
    Tensor l = logits.to(DType::f32).to(Device{}).contiguous();
    if (!seq.on_logits({l.data<float>(), size_t(l.size(1))}, state_->lengths[0])) break;
    if (seq.restart()) run_.lm->reset_slot(*state_, row);
  }
  return seq.result();
}

}  // namespace loom::runtime
