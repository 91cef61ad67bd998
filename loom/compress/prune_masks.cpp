// The pruning decision is a ranking, made on the host from scores copied there (as the metrics and beam search
// rank on the host); the mask is built there and sent back to the tensor's device.
#include "loom/compress/prune_masks.h"

#include <algorithm>
#include <cmath>
#include <functional>
#include <limits>
#include <numeric>

#include "loom/core/error.h"
#include "loom/ops/creation.h"

namespace loom::compress::prune {

namespace {

// The shape split around `dim`: outer x channels x inner, row-major.
struct Slices {
  int64_t outer = 1, channels = 1, inner = 1;
  int64_t at(int64_t o, int64_t c, int64_t i) const { return (o * channels + c) * inner + i; }
};

Slices split(const Tensor& t, int64_t& dim, const char* what) {
  LOOM_CHECK(t.dim() >= 1, what, ": a structured method needs a tensor with at least one dimension, got a scalar");
  const int64_t d = t.dim();
  LOOM_CHECK(dim >= -d && dim < d, what, ": dim ", dim, " is out of range for a ", d, "-d tensor of shape ",
             t.shape());
  if (dim < 0) dim += d;
  Slices s;
  for (int64_t k = 0; k < d; ++k) (k < dim ? s.outer : k == dim ? s.channels : s.inner) *= t.size(k);
  return s;
}

void check_mask(const Tensor& t, const Tensor& mask, const char* what) {
  LOOM_CHECK(t.defined() && is_floating(t.dtype()), what, ": needs a floating-point tensor");
  LOOM_CHECK(mask.defined() && mask.shape() == t.shape(), what, ": the mask must have the tensor's shape ", t.shape(),
             ", got ", mask.defined() ? mask.shape() : Shape{});
}

Tensor to_mask(const std::vector<double>& m, const Tensor& like) {
  return tensor(m, like.shape(), {.dtype = like.dtype()}).to(like.device());
}

// Zeroes, in `m`, the `k` candidates of smallest score (stable: the lower index first among equal scores).
void prune_smallest(std::vector<double>& m, const std::vector<int64_t>& candidates, const std::vector<double>& score,
                    int64_t k) {
  std::vector<int64_t> order(candidates.size());
  std::iota(order.begin(), order.end(), 0);
  std::stable_sort(order.begin(), order.end(), [&](int64_t a, int64_t b) { return score[a] < score[b]; });
  for (int64_t j = 0; j < k; ++j) m[candidates[order[j]]] = 0;
}

Tensor unstructured(const Tensor& t, const Tensor& mask, const Amount& amount, const char* what,
                    const std::function<std::vector<double>(const std::vector<int64_t>&)>& scores) {
  check_mask(t, mask, what);
  std::vector<double> m = mask.tolist();
  std::vector<int64_t> candidates;
  for (int64_t i = 0; i < int64_t(m.size()); ++i)
    if (m[i] == 1) candidates.push_back(i);
  const int64_t k = amount.of(int64_t(candidates.size()), what);
  if (k > 0) prune_smallest(m, candidates, scores(candidates), k);
  return to_mask(m, mask);
}

}  // namespace

Tensor l1_unstructured_mask(const Tensor& t, const Tensor& mask, const Amount& amount) {
  return unstructured(t, mask, amount, "l1_unstructured", [&](const std::vector<int64_t>& c) {
    const std::vector<double> v = t.tolist();
    std::vector<double> s(c.size());
    for (size_t j = 0; j < c.size(); ++j) s[j] = std::fabs(v[c[j]]);
    return s;
  });
}

Tensor random_unstructured_mask(const Tensor& t, const Tensor& mask, const Amount& amount, Generator* gen) {
  return unstructured(t, mask, amount, "random_unstructured", [&](const std::vector<int64_t>& c) {
    // torch prunes the top-k of rand_like: here the negated draws, so the smallest score is the largest draw.
    std::vector<double> s = rand({int64_t(c.size())}, {.dtype = DType::f64}, gen).tolist();
    for (double& x : s) x = -x;
    return s;
  });
}

std::vector<double> ln_norms(const Tensor& t, double n, int64_t dim) {
  LOOM_CHECK(t.defined() && is_floating(t.dtype()), "ln_structured: needs a floating-point tensor");
  LOOM_CHECK(n >= 0 || n == -std::numeric_limits<double>::infinity(), "ln_structured: the norm order n must be >= 0 ",
             "or -inf, got ", n);
  const Slices s = split(t, dim, "ln_structured");
  const std::vector<double> v = t.tolist();
  std::vector<double> norms(s.channels);
  for (int64_t c = 0; c < s.channels; ++c) {
    double acc = std::isinf(n) && n < 0 ? std::numeric_limits<double>::infinity() : 0.0;
    for (int64_t o = 0; o < s.outer; ++o)
      for (int64_t i = 0; i < s.inner; ++i) {
        const double x = std::fabs(v[s.at(o, c, i)]);
        if (std::isinf(n)) acc = n > 0 ? std::max(acc, x) : std::min(acc, x);
        else if (n == 0) acc += x != 0;
        else if (n == 1) acc += x;
        else if (n == 2) acc += x * x;
        else acc += std::pow(x, n);
      }
    norms[c] = std::isinf(n) || n == 0 || n == 1 ? acc : n == 2 ? std::sqrt(acc) : std::pow(acc, 1.0 / n);
  }
  return norms;
}

Tensor ln_structured_mask(const Tensor& t, const Tensor& mask, const Amount& amount, double n, int64_t dim) {
  check_mask(t, mask, "ln_structured");
  const Slices s = split(t, dim, "ln_structured");
  std::vector<double> m = mask.tolist();
  // torch's PruningContainer: only the slices the mask does not zero entirely take part.
  std::vector<int64_t> live;
  for (int64_t c = 0; c < s.channels; ++c) {
    bool any = false;
    for (int64_t o = 0; o < s.outer && !any; ++o)
      for (int64_t i = 0; i < s.inner && !any; ++i) any = m[s.at(o, c, i)] != 0;
    if (any) live.push_back(c);
  }
  const int64_t k = amount.of(int64_t(live.size()), "ln_structured");
  if (k == 0) return to_mask(m, mask);
  const std::vector<double> norms = ln_norms(t, n, dim);
  std::vector<double> score(live.size());
  for (size_t j = 0; j < live.size(); ++j) score[j] = norms[live[j]];
  std::vector<double> channel(s.channels, 1.0);
  prune_smallest(channel, live, score, k);
  for (int64_t o = 0; o < s.outer; ++o)
    for (int64_t c = 0; c < s.channels; ++c)
      if (channel[c] == 0)
        for (int64_t i = 0; i < s.inner; ++i) m[s.at(o, c, i)] = 0;
  return to_mask(m, mask);
}

std::vector<int64_t> strongest_slices(const Tensor& t, int64_t keep, double n, int64_t dim) {
  LOOM_CHECK(t.defined() && t.dim() >= 1, "strongest_slices: needs a tensor with at least one dimension");
  const int64_t total = t.size(dim);
  LOOM_CHECK(keep >= 1 && keep <= total, "strongest_slices: can keep 1 to ", total, " slices, asked for ", keep);
  const Tensor mask = ln_structured_mask(t, ones_like(t), Amount(total - keep), n, dim);
  Slices s = split(mask, dim, "ln_structured");
  const std::vector<double> m = mask.tolist();
  std::vector<int64_t> kept;
  for (int64_t c = 0; c < s.channels; ++c)
    if (m[s.at(0, c, 0)] != 0) kept.push_back(c);
  return kept;
}

}  // namespace loom::compress::prune
