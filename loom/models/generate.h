// Text generation over LanguageModel::decode_step: greedy, temperature, top-k, top-p (nucleus), repetition
// penalty, stop tokens and stop strings, a streaming callback, several prompts; seeded, so reproducible.
//   models::GenerateOptions o{.max_new_tokens = 50, .sampling = {.temperature = 0.8, .top_k = 40}, .seed = 1};
//   auto outs = models::generate(*lm, {tok->encode("In the beginning")}, o,
//                                [&](size_t i, int64_t id) { std::cout << tok->decode({&id, 1}) << std::flush; return true; });
#pragma once
#include <cstdint>
#include <functional>
#include <span>
#include <string>
#include <vector>

#include "loom/core/generator.h"
#include "loom/models/language_model.h"

namespace loom::models {

struct SamplingOptions {
  double temperature = 1.0;         // logits / temperature; 0 means greedy (argmax)
  int64_t top_k = 0;                // keep the k most likely tokens (0: all)
  double top_p = 1.0;               // keep the smallest set of most likely tokens whose probability reaches p
  double repetition_penalty = 1.0;  // CTRL / Hugging Face: a seen token's logit is divided by it (if > 0) or
                                    // multiplied by it (if < 0); 1 is off
};
void check_sampling_options(const SamplingOptions& o);  // throws loom::Error naming a bad value

// The distribution sample_token draws from, in double: repetition penalty (over `history`), temperature,
// top-k, top-p in that order (Hugging Face's order); filtered tokens get probability 0. With temperature 0
// it is one-hot on the argmax (the first one on ties).
std::vector<double> sampling_distribution(std::span<const float> logits, const SamplingOptions& o,
                                          std::span<const int64_t> history = {});
// One token from that distribution, drawing a single uniform number from `gen` (none when greedy).
int64_t sample_token(std::span<const float> logits, const SamplingOptions& o, std::span<const int64_t> history,
                     Generator& gen);

struct GenerateOptions {
  int64_t max_new_tokens = 100;
  SamplingOptions sampling;
  uint64_t seed = 0;                 // prompt i samples from Generator(seed + i): each output is independent
  std::vector<int64_t> stop_tokens = {};  // generation of a sequence ends after emitting one of these
};

// Called with each new token as soon as it is sampled; return false to end that sequence (stop strings).
using TokenCallback = std::function<bool(size_t prompt_index, int64_t token)>;

// The new tokens for each prompt (non-empty token lists). Prompts run one after another with batch 1, so
// they may differ in length. A model with a bounded context() sees at most its last context() tokens: past
// that the decoder restarts on the last context() tokens at every step (nanoGPT's cropping).
std::vector<std::vector<int64_t>> generate(LanguageModel& model, const std::vector<std::vector<int64_t>>& prompts,
                                           const GenerateOptions& o, const TokenCallback& on_token = {});

// Streams generated text while holding back what could be the start of a stop string, so a stop string is
// never printed. Feed it the whole text generated so far after each token:
//   StopStrings s({"\n\n"});  std::cout << s.push(text_so_far);  ...  if (s.stopped()) break;  std::cout << s.finish(text);
class StopStrings {
 public:
  explicit StopStrings(std::vector<std::string> stops);
  // The new text that is safe to print. Once a stop string appears, returns the text before it and stopped()
  // turns true.
  std::string push(const std::string& text);
  // At the end of generation: whatever was held back (nothing after a stop).
  std::string finish(const std::string& text);
  bool stopped() const { return stopped_; }
  // The final text: up to the first stop string.
  std::string result(const std::string& text) const;

 private:
  std::vector<std::string> stops_;
  size_t emitted_ = 0;
  bool stopped_ = false;
};

}  // namespace loom::models
