#include "loom/models/beam_search.h"

#include <algorithm>
#include <cmath>

#include "loom/core/error.h"

namespace loom::models {

namespace {

struct Candidate {
  double score;
  int64_t parent, token;
};

double normalize(double score, size_t length, double alpha) {
  return alpha == 0 ? score : score / std::pow(double(std::max<size_t>(length, 1)), alpha);
}

}  // namespace

std::vector<Hypothesis> beam_search(const BeamStepFn& step, const BeamSearchOptions& o) {
  LOOM_CHECK(o.beam >= 1, "beam_search: beam must be >= 1, got ", o.beam);
  LOOM_CHECK(o.max_len >= 1, "beam_search: max_len must be >= 1, got ", o.max_len);
  std::vector<Hypothesis> live(1), finished;
  std::vector<int64_t> parents{0}, tokens{o.bos};
  for (int64_t t = 0; t < o.max_len && !live.empty(); ++t) {
    Tensor lp = step(parents, tokens).to(DType::f64).to(Device{}).contiguous();  // ranking runs on the host
    LOOM_CHECK(lp.dim() == 2 && lp.size(0) == int64_t(live.size()), "beam_search: the step function returned ",
               lp.shape(), " for ", live.size(), " hypotheses (expected (K, V) with K = ", live.size(), ")");
    const int64_t V = lp.size(1);
    LOOM_CHECK(o.eos >= 0 && o.eos < V, "beam_search: eos ", o.eos, " is not a token of the vocabulary of ", V);
    const double* p = lp.data<double>();
    // The best 2 * beam candidates: enough for `beam` live ones even if `beam` of them end with eos.
    std::vector<Candidate> cand;
    cand.reserve(live.size() * size_t(V));
    for (size_t k = 0; k < live.size(); ++k)
      for (int64_t v = 0; v < V; ++v) cand.push_back({live[k].score + p[int64_t(k) * V + v], int64_t(k), v});
    const size_t keep = std::min(cand.size(), size_t(2 * o.beam));
    // Ties go to the earlier hypothesis and the smaller token, as argmax picks the first maximum.
    std::partial_sort(cand.begin(), cand.begin() + std::ptrdiff_t(keep), cand.end(), [](const auto& a, const auto& b) {
      return a.score != b.score ? a.score > b.score : a.parent != b.parent ? a.parent < b.parent : a.token < b.token;
    });
    std::vector<Hypothesis> next;
    parents.clear(), tokens.clear();
    for (size_t i = 0; i < keep && int64_t(next.size()) < o.beam; ++i) {
      const Candidate& c = cand[i];
      Hypothesis h = live[size_t(c.parent)];
      h.score = c.score;
      if (c.token == o.eos) {
        if (int64_t(i) < o.beam) {  // only the top `beam` candidates may finish
          h.finished = true;
          h.normalized = normalize(h.score, h.tokens.size() + 1, o.length_penalty);
          finished.push_back(std::move(h));
        }
        continue;
      }
      h.tokens.push_back(c.token);
      parents.push_back(c.parent), tokens.push_back(c.token);
      next.push_back(std::move(h));
    }
    live = std::move(next);
    if (int64_t(finished.size()) >= o.beam) break;
    // Without a length penalty scores only fall, so no live hypothesis can overtake the best finished one.
    if (o.length_penalty == 0 && !finished.empty()) {
      double best = finished[0].score, top = -INFINITY;
      for (const auto& h : finished) best = std::max(best, h.score);
      for (const auto& h : live) top = std::max(top, h.score);
      if (top <= best) break;
    }
  }
  if (finished.empty())  // nothing reached eos within max_len: return the live hypotheses, unfinished
    for (auto& h : live) {
      h.normalized = normalize(h.score, h.tokens.size(), o.length_penalty);
      finished.push_back(std::move(h));
    }
  std::stable_sort(finished.begin(), finished.end(),
                   [](const Hypothesis& a, const Hypothesis& b) { return a.normalized > b.normalized; });
  if (int64_t(finished.size()) > o.beam) finished.resize(size_t(o.beam));
  return finished;
}

}  // namespace loom::models
