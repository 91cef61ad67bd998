// The vectorised float32 layer-norm kernels (loom/backend/cpu/norm_kernels.h, reached through layer_norm and
// group_norm on inputs without spatial dims) against plain double loops on the same float inputs: odd
// widths around the 8/16-lane body and its tail, a 50257-wide row, large-mean rows (x = 1000 + noise, where
// float cancellation shows), every weight/bias combination, one and two threads.
#include <gtest/gtest.h>

#include <cmath>
#include <vector>

#include "loom/loom.h"

using namespace loom;

namespace {

// Layer norm of R rows of K values in double; channel of element k in row r is (r % Gr) * K + k.
struct Ref {
  std::vector<double> y, dx, dw, db;
};

Ref reference(const std::vector<double>& x, const std::vector<double>& g, const std::vector<double>& w,
              const std::vector<double>& b, int64_t R, int64_t K, int64_t Gr, double eps) {
  Ref o{std::vector<double>(x.size()), std::vector<double>(x.size()), std::vector<double>(size_t(Gr * K), 0.0),
        std::vector<double>(size_t(Gr * K), 0.0)};
  for (int64_t r = 0; r < R; ++r) {
    const double* xr = x.data() + r * K;
    const double* gr = g.data() + r * K;
    double m = 0, v = 0;
    for (int64_t k = 0; k < K; ++k) m += xr[k];
    m /= double(K);
    for (int64_t k = 0; k < K; ++k) v += (xr[k] - m) * (xr[k] - m);
    const double rs = 1.0 / std::sqrt(v / double(K) + eps);
    const int64_t c0 = (r % Gr) * K;
    double s1 = 0, s2 = 0;
    for (int64_t k = 0; k < K; ++k) {
      const double xh = (xr[k] - m) * rs, wc = w.empty() ? 1.0 : w[size_t(c0 + k)];
      o.y[size_t(r * K + k)] = xh * wc + (b.empty() ? 0.0 : b[size_t(c0 + k)]);
      s1 += gr[k] * wc;
      s2 += gr[k] * wc * xh;
      o.dw[size_t(c0 + k)] += gr[k] * xh;
      o.db[size_t(c0 + k)] += gr[k];
    }
    for (int64_t k = 0; k < K; ++k) {
      const double xh = (xr[k] - m) * rs, wc = w.empty() ? 1.0 : w[size_t(c0 + k)];
      o.dx[size_t(r * K + k)] = rs * (gr[k] * wc - s1 / double(K) - xh * s2 / double(K));
    }
  }
  return o;
}

// Max |a - b| / (1 + |b|): every output here is O(1) to O(sqrt(R)) in size.
double max_err(const Tensor& a, const std::vector<double>& b) {
  const std::vector<double> av = a.tolist();
  EXPECT_EQ(av.size(), b.size());
  double e = 0;
  for (size_t i = 0; i < av.size() && i < b.size(); ++i) e = std::max(e, std::abs(av[i] - b[i]) / (1 + std::abs(b[i])));
  return e;
}

struct Case {
  int64_t rows, width, groups;  // groups > 1: group_norm on (rows / groups, groups * width) instead
  bool weight, bias, grad_x;
  double mean;                  // inputs are mean + noise * randn
  double noise;
};

void run(const Case& c) {
  SCOPED_TRACE(::testing::Message() << "rows " << c.rows << " width " << c.width << " groups " << c.groups
                                    << " weight " << c.weight << " bias " << c.bias << " grad_x " << c.grad_x
                                    << " mean " << c.mean << " noise " << c.noise);
  manual_seed(uint64_t(c.rows * 131 + c.width));
  const double eps = 1e-5;
  // group_norm on (N, groups * width) has rows N * groups of `width` values each (no spatial dims).
  const int64_t N = c.rows / c.groups, C = c.groups * c.width;
  const Shape shape = c.groups > 1 ? Shape{N, C} : Shape{c.rows, c.width};
  const int64_t P = c.groups > 1 ? C : c.width;
  Tensor x = (randn(shape) * c.noise + c.mean).detach();
  x.requires_grad_(c.grad_x);
  Tensor w = c.weight ? (randn({P}) * 0.5 + 1.0).detach() : Tensor();
  Tensor b = c.bias ? randn({P}).detach() : Tensor();
  if (w.defined()) w.requires_grad_(true);
  if (b.defined()) b.requires_grad_(true);
  Tensor g = randn(shape);
  Tensor y = c.groups > 1 ? group_norm(x, c.groups, w, b, eps) : layer_norm(x, {c.width}, w, b, eps);
  const bool any_grad = c.grad_x || c.weight || c.bias;
  if (any_grad) y.backward(g);

  const Ref ref = reference(x.tolist(), g.tolist(), w.defined() ? w.tolist() : std::vector<double>{},
                            b.defined() ? b.tolist() : std::vector<double>{}, c.rows, c.width, c.groups, eps);
  // Float rounding of y, dx is ~1e-7 of the row's scale; the column sums add up to `rows` terms.
  EXPECT_LT(max_err(y, ref.y), 2e-5);
  if (c.grad_x) { EXPECT_LT(max_err(x.grad(), ref.dx), 2e-5); }
  if (c.weight) { EXPECT_LT(max_err(w.grad(), ref.dw), 2e-5); }
  if (c.bias) { EXPECT_LT(max_err(b.grad(), ref.db), 2e-5); }
}

}  // namespace

TEST(NormKernels, LayerNormOddWidthsAllAffineCombinations) {
  for (int64_t K : {1, 7, 16, 17, 31, 768, 1000})
    for (int wb = 0; wb < 4; ++wb) run({5, K, 1, (wb & 1) != 0, (wb & 2) != 0, true, 0.3, 2.0});
}

TEST(NormKernels, LayerNormVocabWideRows) { run({2, 50257, 1, true, true, true, -0.5, 3.0}); }

TEST(NormKernels, LayerNormLargeMeanHasNoCancellation) {
  // float(x - float(mean)) alone is off by ~ulp(1000) / 1e-2 = 6e-3 here; the kernel must stay at rounding.
  for (int64_t K : {7, 17, 768}) run({6, K, 1, true, true, true, 1000.0, 1e-2});
  run({3, 4099, 1, false, false, true, -2.5e4, 0.5});
}

TEST(NormKernels, LayerNormParameterGradsWithoutInputGrad) {
  run({9, 33, 1, true, true, false, 0.0, 1.0});
  run({9, 33, 1, true, false, false, 0.0, 1.0});
}

TEST(NormKernels, GroupNormWithoutSpatialDimsTakesTheSameKernels) {
  run({4 * 3, 8, 3, true, true, true, 0.1, 1.0});
  run({2 * 4, 5, 4, false, true, true, 7.0, 0.2});
}

TEST(NormKernels, TwoThreadsMatchTheReference) {
  // 96 rows of 768 exceed the one-thread grain, so rows split across threads and dw/db partials merge;
  // 300 rows also cross the 64-row float-to-double fold of the column sums.
  const int saved = get_num_threads();
  set_num_threads(2);
  run({96, 768, 1, true, true, true, 0.0, 1.0});
  run({300, 128, 1, true, true, true, 5.0, 1.0});
  set_num_threads(saved);
}
