// Generating text from a loaded run: tokenize, prefill, sample, stop at end-of-text or a stop string, and
// stream the text as it comes. GenerationSession runs one request at a time (the CLI's `loom generate`, C++
// programs); BatchEngine (batch_engine.h) runs many together with the same Sequence logic, so a request
// gives the same tokens either way.
//   runtime::Run run = runtime::load_run("runs/gpt");
//   runtime::GenerationSession s(run);
//   auto r = s.generate("In the beginning", {.max_new_tokens = 50, .sampling = {.temperature = 0}},
//                       [](const std::string& piece) { std::cout << piece << std::flush; return true; });
//   // r.text, r.tokens, r.prompt_tokens, r.finish_reason ("stop", "length", "cancelled")
#pragma once
#include <cstdint>
#include <functional>
#include <memory>
#include <span>
#include <string>
#include <vector>

#include "loom/core/generator.h"
#include "loom/models/generate.h"
#include "loom/runtime/run.h"

namespace loom::runtime {

struct GenerationOptions {
  int64_t max_new_tokens = 100;
  models::SamplingOptions sampling = {};
  uint64_t seed = 0;
  std::vector<std::string> stop = {};  // generation ends before the first of these strings
  bool stop_at_eot = true;             // end at the tokenizer's end-of-text token (GPT-2's <|endoftext|>)
};
void check_generation_options(const GenerationOptions& o);  // throws loom::Error naming a bad value

struct GenerationResult {
  std::string text;             // the generated text, up to (not including) a stop string
  std::vector<int64_t> tokens;  // the sampled tokens (including a final end-of-text token)
  int64_t prompt_tokens = 0;
  std::string finish_reason;    // "stop" (end-of-text or a stop string), "length", "cancelled"
};

// Called with each new piece of text as soon as it is safe to show (never part of a stop string, never a
// split UTF-8 character); return false to end the request (finish_reason "cancelled").
using TextCallback = std::function<bool(const std::string& piece)>;

// One request's generation state between model steps: the tokens still to feed, its sampler, its text.
// The caller owns the model slot: feed `pending` (in chunks if it likes), and after the chunk that empties
// it, hand the logits of its last position to on_logits.
class Sequence {
 public:
  // prompt: non-empty token ids. `capacity`: the most tokens the model slot holds (0: unbounded); a longer
  // prompt keeps its last `capacity` tokens.
  Sequence(const Run& run, std::vector<int64_t> prompt, GenerationOptions o, TextCallback on_text, int64_t capacity);
  // Tokens to feed before the next sample.
  std::vector<int64_t> pending;
  // After the model consumed all of `pending` (the slot now holds `slot_length` tokens): samples the next
  // token, streams its text, and refills `pending`. When the slot is full (slot_length == context) the
  // sequence restarts the slot on its last `capacity` tokens (nanoGPT's cropping): then restart() is true
  // and the caller resets the slot before feeding `pending`. Returns false once the sequence is finished.
  bool on_logits(std::span<const float> logits, int64_t slot_length);
  // Ends the sequence early (a client went away, the server shuts down).
  void cancel();
  bool finished() const { return finished_; }
  bool restart() const { return restart_; }
  const GenerationResult& result() const { return result_; }
  int64_t generated() const { return int64_t(result_.tokens.size()); }

 private:
  void finish(const std::string& reason);
  void window();  // pending = the last capacity_ tokens of history_
  const Run& run_;
  int64_t capacity_;
  GenerationOptions o_;
  TextCallback on_text_;
  Generator gen_;
  std::vector<int64_t> history_;  // prompt + generated: what the repetition penalty looks at
  std::vector<int64_t> text_ids_;  // the generated tokens that are text (not end-of-text)
  models::StopStrings stops_;
  GenerationResult result_;
  bool finished_ = false, restart_ = false;
};

// The prompt's token ids (GPT-2: an empty prompt becomes <|endoftext|>, as GPT-2 starts unconditioned text).
// Throws naming the problem when the prompt gives no tokens.
std::vector<int64_t> encode_prompt(const Run& run, const std::string& prompt);

// One request at a time over one model slot (the CLI's `loom generate`, C++ programs).
class GenerationSession {
 public:
  explicit GenerationSession(const Run& run);
  GenerationResult generate(const std::string& prompt, const GenerationOptions& o, const TextCallback& on_text = {});
  GenerationResult generate(const std::vector<int64_t>& prompt, const GenerationOptions& o,
                            const TextCallback& on_text = {});

 private:
  const Run& run_;
  std::unique_ptr<models::SlotDecodeState> state_;
};

// The length of `s` without a trailing incomplete UTF-8 sequence (a character split between tokens).
size_t utf8_complete_prefix(const std::string& s);

}  // namespace loom::runtime
