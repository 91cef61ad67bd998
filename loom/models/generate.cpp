#include "loom/models/generate.h"

#include <algorithm>
#include <cmath>
#include <limits>
#include <numeric>
#include <unordered_set>

#include "loom/autograd/grad_mode.h"
#include "loom/core/error.h"
#include "loom/ops/creation.h"

namespace loom::models {

void check_sampling_options(const SamplingOptions& o) {
  LOOM_CHECK(std::isfinite(o.temperature) && o.temperature >= 0, "sampling: temperature must be >= 0 (0: greedy), got ",
             o.temperature);
  LOOM_CHECK(o.top_k >= 0, "sampling: top_k must be >= 0 (0: off), got ", o.top_k);
  LOOM_CHECK(o.top_p > 0 && o.top_p <= 1, "sampling: top_p must be in (0, 1], got ", o.top_p);
  LOOM_CHECK(std::isfinite(o.repetition_penalty) && o.repetition_penalty > 0,
             "sampling: repetition_penalty must be > 0 (1: off), got ", o.repetition_penalty);
}

std::vector<double> sampling_distribution(std::span<const float> logits, const SamplingOptions& o,
                                          std::span<const int64_t> history) {
  check_sampling_options(o);
  const int64_t V = int64_t(logits.size());
  LOOM_CHECK(V > 0, "sampling: empty logits");
  std::vector<double> z(logits.begin(), logits.end());
  if (o.repetition_penalty != 1.0) {
    std::unordered_set<int64_t> seen(history.begin(), history.end());
    for (int64_t t : seen)
      if (t >= 0 && t < V) z[t] = z[t] > 0 ? z[t] / o.repetition_penalty : z[t] * o.repetition_penalty;
  }
  std::vector<double> p(V, 0.0);
  if (o.temperature == 0) {
    p[std::max_element(z.begin(), z.end()) - z.begin()] = 1.0;  // first maximum on ties
    return p;
  }
  if ((o.top_k == 0 || o.top_k >= V) && o.top_p >= 1.0) {
    // Nothing is cut, so no order is needed: a plain softmax at the temperature. (Sorting 50257 indices cost
    // milliseconds per token, paid by every sequence of a batched step; the sums below run in index order, so
    // a draw can differ from the sorted-order sums only where u falls within rounding of a boundary.)
    const double zmax = *std::max_element(z.begin(), z.end());
    double total = 0;
    for (int64_t i = 0; i < V; ++i) total += p[i] = std::exp((z[i] - zmax) / o.temperature);
    LOOM_CHECK(std::isfinite(total) && total > 0, "sampling: the logits are not finite");
    for (double& x : p) x /= total;
    return p;
  }
  // Most likely first; stable so equal logits keep index order (top-k=1 then agrees with argmax).
  std::vector<int64_t> order(V);
  std::iota(order.begin(), order.end(), 0);
  std::stable_sort(order.begin(), order.end(), [&](int64_t a, int64_t b) { return z[a] > z[b]; });
  int64_t keep = o.top_k > 0 ? std::min(o.top_k, V) : V;
  const double zmax = z[order[0]];
  double total = 0;
  for (int64_t i = 0; i < keep; ++i) total += p[order[i]] = std::exp((z[order[i]] - zmax) / o.temperature);
  LOOM_CHECK(std::isfinite(total) && total > 0, "sampling: the logits are not finite");
  for (int64_t i = 0; i < keep; ++i) p[order[i]] /= total;
  if (o.top_p < 1.0) {
    double cum = 0;
    int64_t n = 0;
    while (n < keep && cum < o.top_p) cum += p[order[n++]];  // the smallest prefix reaching top_p
    for (int64_t i = n; i < keep; ++i) p[order[i]] = 0;
    for (int64_t i = 0; i < n; ++i) p[order[i]] /= cum;
  }
  return p;
}

int64_t sample_token(std::span<const float> logits, const SamplingOptions& o, std::span<const int64_t> history,
                     Generator& gen) {
  if (o.temperature == 0 && o.repetition_penalty == 1.0) {
    // Greedy: the first maximum of the logits themselves, what the distribution below would pick, without
    // two V-long double vectors per token (a batched step samples once per sequence; GPT-2's V is 50257).
    check_sampling_options(o);
    LOOM_CHECK(!logits.empty(), "sampling: empty logits");
    return std::max_element(logits.begin(), logits.end()) - logits.begin();
  }
  const std::vector<double> p = sampling_distribution(logits, o, history);
  if (o.temperature == 0) return std::max_element(p.begin(), p.end()) - p.begin();
  const double u = gen.next_double();
  double cum = 0;
  int64_t last = 0;
  for (int64_t i = 0; i < int64_t(p.size()); ++i) {
    if (p[i] == 0) continue;
    cum += p[i], last = i;
    if (u < cum) return i;
  }
  return last;  // rounding left u above the final sum
}

namespace {

std::vector<int64_t> generate_one(LanguageModel& model, std::vector<int64_t> seq, size_t index, const GenerateOptions& o,
                                  const TokenCallback& on_token) {
  LOOM_CHECK(!seq.empty(), "generate: prompt ", index, " is empty (give at least one token)");
  const int64_t ctx = model.context(), V = model.vocab_size();
  for (int64_t t : seq)
    LOOM_CHECK(t >= 0 && t < V, "generate: prompt ", index, " has token id ", t, " outside the vocabulary [0, ", V, ")");
  Generator gen(o.seed + index);
  NoGradGuard ng;
  auto window = [&](std::span<const int64_t> s) {  // the last ctx tokens (all when unbounded)
    const size_t n = ctx > 0 ? std::min<size_t>(s.size(), size_t(ctx)) : s.size();
    std::vector<int64_t> w(s.end() - n, s.end());
    return tensor(w, {1, int64_t(n)});
  };
  auto state = model.start_decoding(1, ctx);
  Tensor logits = model.decode_step(*state, window(seq));
  std::vector<int64_t> out;
  for (int64_t step = 0; step < o.max_new_tokens; ++step) {
    Tensor l = logits.to(DType::f32).to(Device{}).contiguous();  // sampling runs on the host
    const int64_t next = sample_token({l.data<float>(), size_t(V)}, o.sampling, seq, gen);
    seq.push_back(next), out.push_back(next);
    if (on_token && !on_token(index, next)) break;
    if (std::find(o.stop_tokens.begin(), o.stop_tokens.end(), next) != o.stop_tokens.end()) break;
    if (step + 1 == o.max_new_tokens) break;  // no forward for a token nobody samples
    if (ctx > 0 && state->position >= ctx) {
      state = model.start_decoding(1, ctx);  // the cache is full: re-read the last ctx tokens
      logits = model.decode_step(*state, window(seq));
    } else {
      logits = model.decode_step(*state, tensor(std::vector<int64_t>{next}, {1, 1}));
    }
  }
  return out;
}

}  // namespace

std::vector<std::vector<int64_t>> generate(LanguageModel& model, const std::vector<std::vector<int64_t>>& prompts,
                                           const GenerateOptions& o, const TokenCallback& on_token) {
  check_sampling_options(o.sampling);
  LOOM_CHECK(o.max_new_tokens >= 0, "generate: max_new_tokens must be >= 0, got ", o.max_new_tokens);
  std::vector<std::vector<int64_t>> outs;
  for (size_t i = 0; i < prompts.size(); ++i) outs.push_back(generate_one(model, prompts[i], i, o, on_token));
  return outs;
}

StopStrings::StopStrings(std::vector<std::string> stops) {
  for (auto& s : stops)
    if (!s.empty()) stops_.push_back(std::move(s));
}

std::string StopStrings::result(const std::string& text) const {
  size_t cut = text.size();
  for (const auto& s : stops_) cut = std::min(cut, text.find(s));
  return text.substr(0, cut);
}

std::string StopStrings::push(const std::string& text) {
  if (stopped_) return "";
  const std::string r = result(text);
  if (r.size() < text.size()) {
    stopped_ = true;
    std::string tail = emitted_ < r.size() ? r.substr(emitted_) : "";
    emitted_ = std::max(emitted_, r.size());
    return tail;
  }
  // Hold back the longest suffix that is a proper prefix of a stop string.
  size_t hold = 0;
  for (const auto& s : stops_)
    for (size_t k = std::min(s.size() - 1, text.size()); k > hold; --k)
      if (text.compare(text.size() - k, k, s, 0, k) == 0) {
        hold = k;
        break;
      }
  const size_t safe = text.size() - hold;
  std::string out = safe > emitted_ ? text.substr(emitted_, safe - emitted_) : "";
  emitted_ = std::max(emitted_, safe);
  return out;
}

std::string StopStrings::finish(const std::string& text) {
  if (stopped_) return "";
  const std::string r = result(text);
  std::string out = r.size() > emitted_ ? r.substr(emitted_) : "";
  emitted_ = r.size();
  return out;
}

}  // namespace loom::models
