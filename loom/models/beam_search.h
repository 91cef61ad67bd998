// Beam search over any step-by-step scorer (a seq2seq decoder, a language model, a test's table).
//   models::BeamStepFn step = [&](const std::vector<int64_t>& parents, const std::vector<int64_t>& tokens) {
//     reorder_state(parents);  return log_probs_for(tokens); };           // (K, V) log-probabilities
//   auto hyps = models::beam_search(step, {.beam = 5, .max_len = 20, .bos = 2, .eos = 3});   // best first
// Each step keeps the `beam` best live hypotheses by total log-probability; a hypothesis that ends with eos
// among the best `beam` candidates of a step is finished (so beam 1 is exactly greedy decoding). Finished
// hypotheses are ranked by score / length^length_penalty (length counts eos; 0 ranks by raw log-probability).
#pragma once
#include <cstdint>
#include <functional>
#include <vector>

#include "loom/core/tensor.h"

namespace loom::models {

// parents[k]: which hypothesis of the previous step (an index into the previous call's rows; all 0 on the
// first call, which has one row) the new row k extends; tokens[k]: the token it was extended with (bos on the
// first call). Returns f32 or f64 log-probabilities (K, V), K = parents.size().
using BeamStepFn = std::function<Tensor(const std::vector<int64_t>& parents, const std::vector<int64_t>& tokens)>;

struct BeamSearchOptions {
  int64_t beam = 5;
  int64_t max_len = 50;          // at most this many tokens per hypothesis, eos included
  double length_penalty = 0.0;   // alpha in score / length^alpha
  int64_t bos = 2, eos = 3;      // WordVocab's ids
};

struct Hypothesis {
  std::vector<int64_t> tokens;  // without bos and eos
  double score = 0;             // total log-probability (eos included when finished)
  double normalized = 0;        // score / length^length_penalty, the ranking key
  bool finished = false;        // ended with eos (false: cut at max_len)
};

// Up to `beam` hypotheses, best first.
std::vector<Hypothesis> beam_search(const BeamStepFn& step, const BeamSearchOptions& o);

}  // namespace loom::models
