// Fast CPU kernels against plain reference loops on odd shapes: size 1, primes, non-contiguous inputs.
#include <gtest/gtest.h>

#include <cmath>
#include <functional>

#include "loom/backend/cpu/isa.h"
#include "loom/backend/cpu/reference.h"
#include "loom/backend/cpu/vec_math.h"
#include "loom/loom.h"

using namespace loom;

namespace {

// A naive reduction over one dim of a contiguous copy, as a reference.
std::vector<double> ref_sum_dim(const Tensor& x, int64_t dim) {
  Tensor c = x.contiguous().to(DType::f64);
  const double* p = c.data<double>();
  int64_t outer = 1, inner = 1, D = x.shape()[size_t(dim)];
  for (int64_t d = 0; d < dim; ++d) outer *= x.shape()[size_t(d)];
  for (int64_t d = dim + 1; d < x.dim(); ++d) inner *= x.shape()[size_t(d)];
  std::vector<double> out(size_t(outer * inner), 0.0);
  for (int64_t o = 0; o < outer; ++o)
    for (int64_t k = 0; k < D; ++k)
      for (int64_t i = 0; i < inner; ++i) out[size_t(o * inner + i)] += p[(o * D + k) * inner + i];
  return out;
}

void expect_near_vec(const std::vector<double>& a, const std::vector<double>& b, double tol) {
  ASSERT_EQ(a.size(), b.size());
  for (size_t i = 0; i < a.size(); ++i) ASSERT_NEAR(a[i], b[i], tol * (1 + std::abs(b[i]))) << "at " << i;
}

}  // namespace

class GemmReference : public ::testing::TestWithParam<std::tuple<int, int, int, bool, bool>> {};

TEST_P(GemmReference, MatchesNaiveLoops) {
  auto [M, N, K, ta, tb] = GetParam();
  manual_seed(uint64_t(M * 1000 + N * 10 + K));
  Tensor A = ta ? randn({K, M}) : randn({M, K});
  Tensor B = tb ? randn({N, K}) : randn({K, N});
  Tensor C = full({M, N}, 0.5f);
  Tensor C_ref = C.clone();
  backend_for(C).gemm(ta, tb, M, N, K, 1.5, A.raw_data(), ta ? M : K, B.raw_data(), tb ? K : N, 0.25, C.raw_data(), N,
                      DType::f32);
  ref::gemm<float>(ta, tb, M, N, K, 1.5f, A.data<float>(), ta ? M : K, B.data<float>(), tb ? K : N, 0.25f,
                   C_ref.data<float>(), N);
  expect_near_vec(C.tolist(), C_ref.tolist(), 1e-5);
}

INSTANTIATE_TEST_SUITE_P(OddShapes, GemmReference,
                         ::testing::Values(std::make_tuple(1, 1, 1, false, false), std::make_tuple(1, 7, 13, false, true),
                                           std::make_tuple(13, 1, 7, true, false), std::make_tuple(31, 37, 41, true, true),
                                           std::make_tuple(64, 96, 128, false, false),
                                           std::make_tuple(127, 129, 67, false, true)));

TEST(KernelReference, MatmulOnNonContiguousOperands) {
  manual_seed(3);
  Tensor a = randn({7, 11}).slice(1, 0, 11, 2);  // (7, 6) with stride 2: needs a copy, not a GEMM flag
  Tensor b = randn({5, 6}).t();                  // (6, 5) transposed: a GEMM flag
  Tensor y = matmul(a, b);
  Tensor ac = a.contiguous(), bc = b.contiguous();
  std::vector<float> ref(7 * 5, 0.0f);
  ref::gemm<float>(false, false, 7, 5, 6, 1.0f, ac.data<float>(), 6, bc.data<float>(), 5, 0.0f, ref.data(), 5);
  expect_near_vec(y.tolist(), std::vector<double>(ref.begin(), ref.end()), 1e-5);
}

TEST(KernelReference, ReductionsOnOddAndStridedShapes) {
  manual_seed(4);
  for (Shape s : {Shape{1}, Shape{1, 1, 1}, Shape{7}, Shape{3, 5, 7}, Shape{2, 1, 13}, Shape{11, 1}, Shape{257, 129}}) {
    Tensor x = randn(s);
    for (int64_t d = 0; d < x.dim(); ++d) expect_near_vec(sum(x, {d}).tolist(), ref_sum_dim(x, d), 1e-5);
    Tensor xt = x.dim() >= 2 ? x.transpose(0, x.dim() - 1) : x;
    for (int64_t d = 0; d < xt.dim(); ++d) expect_near_vec(sum(xt, {d}).tolist(), ref_sum_dim(xt, d), 1e-5);
  }
  // Large enough to take the multithreaded path in both reduction layouts.
  Tensor big = randn({300, 517});
  expect_near_vec(sum(big, {0}).tolist(), ref_sum_dim(big, 0), 1e-5);
  expect_near_vec(sum(big, {1}).tolist(), ref_sum_dim(big, 1), 1e-5);
  expect_near_vec(sum(big.t(), {1}).tolist(), ref_sum_dim(big.t(), 1), 1e-5);
}

TEST(KernelReference, ElementwiseOnStridedAndBroadcastOperands) {
  manual_seed(5);
  Tensor a = randn({37, 41}).t();   // non-contiguous
  Tensor b = randn({37}).view({1, 37}); // broadcast along rows
  Tensor y = a * b + a.exp();
  std::vector<double> va = a.tolist(), vb = b.tolist(), vy = y.tolist();
  for (int64_t i = 0; i < 41; ++i)
    for (int64_t j = 0; j < 37; ++j) {
      const double x = va[size_t(i * 37 + j)];
      ASSERT_NEAR(vy[size_t(i * 37 + j)], x * vb[size_t(j)] + std::exp(x), 1e-5 * (1 + std::abs(vy[size_t(i * 37 + j)])));
    }
  // A loop big enough to split across threads gives the same answer as a small one.
  Tensor big = randn({1 << 17});
  Tensor r1 = (big * 2.0 + 1.0).sigmoid();
  std::vector<double> vb2 = big.tolist(), vr = r1.tolist();
  for (size_t i = 0; i < vb2.size(); i += 997) ASSERT_NEAR(vr[i], 1.0 / (1.0 + std::exp(-(2 * vb2[i] + 1))), 1e-6);
}

TEST(KernelReference, SoftmaxMatchesNaive) {
  manual_seed(6);
  for (int64_t dim : {0, 1, 2}) {
    Tensor x = randn({3, 7, 5}) * 10.0;
    Tensor y = softmax(x, dim), ly = log_softmax(x, dim);
    Tensor e = (x - amax(x, {dim}, true)).exp();
    Tensor ref = e / e.sum({dim}, true);
    expect_near_vec(y.tolist(), ref.tolist(), 1e-5);
    expect_near_vec(ly.tolist(), ref.log().tolist(), 1e-5);
  }
}

TEST(DTypes, ConversionsRoundTrip) {
  Tensor x = tensor({0.0, 1.0, -2.5, 3.140625, 65504.0, 1e-3});
  Tensor h = x.to(DType::f16), b = x.to(DType::bf16);
  EXPECT_EQ(h.dtype(), DType::f16);
  EXPECT_EQ(h.to(DType::f32).tolist()[3], 3.140625);
  EXPECT_EQ(h.to(DType::f32).tolist()[4], 65504.0);
  EXPECT_NEAR(h.to(DType::f32).tolist()[5], 1e-3, 1e-6);
  EXPECT_EQ(b.to(DType::f32).tolist()[2], -2.5);
  EXPECT_NEAR(b.to(DType::f32).tolist()[3], 3.140625, 0.02);
  EXPECT_EQ(x.to(DType::i64).tolist()[2], -2.0);
  EXPECT_EQ(x.to(DType::boolean).tolist(), (std::vector<double>{0, 1, 1, 1, 1, 1}));
  EXPECT_EQ(x.to(DType::u8).dtype(), DType::u8);
  EXPECT_EQ(promote(DType::i64, DType::f32), DType::f32);
  EXPECT_EQ((arange(3) * 0.5).dtype(), DType::f32);
  EXPECT_EQ((arange(3) + arange(3).to(DType::i32)).dtype(), DType::i64);
  EXPECT_THROW(exp(x.to(DType::bf16)), Error);
}

TEST(KernelReference, VectorisedMathMatchesLibm) {
  // vexp/vtanh/vsigmoid against libm in double, over the whole useful range and the special values.
  double worst_exp = 0, worst_tanh = 0, worst_sig = 0;
  for (int i = -200000; i <= 200000; ++i) {
    const float x = float(i) * 4.4e-4f;  // [-88, 88]; below -87.3 results are subnormal
    const double e = std::exp(double(x)), t = std::tanh(double(x)), s = 1.0 / (1.0 + std::exp(-double(x)));
    worst_exp = std::max(worst_exp, std::abs(cpu::vexp(x) - e) / std::max(e, 1.1754944e-38));
    worst_tanh = std::max(worst_tanh, std::abs(cpu::vtanh(x) - t) / std::max(std::abs(t), 1e-30));
    worst_sig = std::max(worst_sig, std::abs(cpu::vsigmoid(x) - s) / s);
  }
  EXPECT_LT(worst_exp, 3e-7);
  EXPECT_LT(worst_tanh, 3e-7);
  EXPECT_LT(worst_sig, 3e-7);
  EXPECT_EQ(cpu::vexp(-200.0f), 0.0f);
  EXPECT_TRUE(std::isinf(cpu::vexp(100.0f)));
  EXPECT_TRUE(std::isnan(cpu::vexp(std::nanf(""))));
  EXPECT_EQ(cpu::vtanh(30.0f), 1.0f);
  EXPECT_EQ(cpu::vtanh(-30.0f), -1.0f);
  EXPECT_EQ(cpu::vtanh(0.0f), 0.0f);
}

namespace {

// Largest error of a float result against a double reference, relative to |ref| but never to less than the
// smallest normal float (so results in the subnormal range count in absolute terms).
double worst_rel_error(const std::vector<double>& got, const std::vector<double>& x, double (*ref)(double)) {
  double worst = 0;
  for (size_t i = 0; i < x.size(); ++i) {
    const double r = ref(x[i]);
    if (!(std::abs(r) <= 3.4028234663852886e38)) continue;  // overflow and specials are checked one by one
    worst = std::max(worst, std::abs(got[i] - r) / std::max(std::abs(r), 1.1754944e-38));
  }
  return worst;
}

double ref_sigmoid(double x) { return 1.0 / (1.0 + std::exp(-x)); }
double ref_gelu_tanh(double x) { return 0.5 * x * (1.0 + std::tanh(0.7978845608028654 * (x + 0.044715 * x * x * x))); }

}  // namespace

// The ops themselves (vectorised, multithreaded contiguous loops, and the scalar strided loop) against libm in
// double over [-110, 110], which covers overflow, gradual underflow and saturation.
TEST(KernelReference, VectorisedOpsMatchLibmOnEveryLoopPath) {
  std::vector<float> v;
  for (int i = -500000; i <= 500000; ++i) v.push_back(float(i) * 2.2e-4f);  // [-110, 110]
  Tensor x = tensor(v);
  const std::vector<double> xs = x.tolist();
  Tensor xs2 = x.view({1000001, 1}).expand({1000001, 2}).contiguous().select(1, 0);  // stride 2: the strided loop
  for (bool strided : {false, true}) {
    SCOPED_TRACE(strided ? "strided" : "contiguous");
    auto run = [&](Tensor (*f)(const Tensor&)) {
      Tensor y = strided ? f(xs2) : f(x);
      return y.tolist();
    };
    EXPECT_LT(worst_rel_error(run([](const Tensor& t) { return exp(t); }), xs, [](double a) { return std::exp(a); }), 4e-7);
    EXPECT_LT(worst_rel_error(run([](const Tensor& t) { return sigmoid(t); }), xs, ref_sigmoid), 4e-7);
    EXPECT_LT(worst_rel_error(run([](const Tensor& t) { return tanh(t); }), xs, [](double a) { return std::tanh(a); }), 4e-7);
    EXPECT_LT(worst_rel_error(run([](const Tensor& t) { return erf(t); }), xs, [](double a) { return std::erf(a); }), 4e-7);
    // gelu's 1 + tanh cancels for negative x (as in PyTorch's formula): bound the error in units of |x|.
    std::vector<double> g = run([](const Tensor& t) { return gelu(t, "tanh"); });
    double worst = 0;
    for (size_t i = 0; i < xs.size(); ++i) worst = std::max(worst, std::abs(g[i] - ref_gelu_tanh(xs[i])) / (1 + std::abs(xs[i])));
    EXPECT_LT(worst, 3e-7);
    std::vector<double> ge = run([](const Tensor& t) { return gelu(t); });
    worst = 0;
    for (size_t i = 0; i < xs.size(); ++i)
      worst = std::max(worst, std::abs(ge[i] - 0.5 * xs[i] * (1 + std::erf(xs[i] / std::sqrt(2.0)))) / (1 + std::abs(xs[i])));
    EXPECT_LT(worst, 3e-7);
  }
}

TEST(KernelReference, VectorisedOpsSpecialValues) {
  const float inf = std::numeric_limits<float>::infinity(), nan = std::numeric_limits<float>::quiet_NaN();
  // Padded to 64 elements so the specials go through the vector body, not only the remainder loop.
  std::vector<float> v = {inf, -inf, nan, 0.0f, -0.0f, 1e-30f, -1e-30f, 3.4e38f, -3.4e38f, 88.7f, -103.9f, 1e-45f};
  const size_t n = v.size();
  v.resize(64, 0.5f);
  Tensor x = tensor(v);
  auto at = [&](const Tensor& y) { std::vector<double> r = y.tolist(); r.resize(n); return r; };
  const std::vector<double> e = at(exp(x)), s = at(sigmoid(x)), t = at(tanh(x));
  EXPECT_TRUE(std::isinf(e[0]) && e[0] > 0);
  EXPECT_EQ(e[1], 0.0);
  EXPECT_TRUE(std::isnan(e[2]));
  EXPECT_EQ(e[3], 1.0);
  EXPECT_EQ(e[4], 1.0);
  EXPECT_EQ(e[5], 1.0);
  EXPECT_TRUE(std::isinf(e[7]));
  EXPECT_EQ(e[8], 0.0);
  EXPECT_NEAR(e[9], std::exp(double(88.7f)), 4e-7 * std::exp(double(88.7f)));
  EXPECT_GT(e[10], 0.0);  // subnormal, not flushed
  EXPECT_EQ(s[0], 1.0);
  EXPECT_EQ(s[1], 0.0);
  EXPECT_TRUE(std::isnan(s[2]));
  EXPECT_EQ(s[3], 0.5);
  EXPECT_EQ(s[7], 1.0);
  EXPECT_EQ(s[8], 0.0);
  EXPECT_EQ(t[0], 1.0);
  EXPECT_EQ(t[1], -1.0);
  EXPECT_TRUE(std::isnan(t[2]));
  EXPECT_EQ(t[3], 0.0);
  EXPECT_TRUE(std::signbit(t[4]));
  EXPECT_EQ(t[5], double(1e-30f));  // odd polynomial keeps tiny inputs exact
  EXPECT_EQ(t[6], double(-1e-30f));
  EXPECT_EQ(t[7], 1.0);
  EXPECT_EQ(t[8], -1.0);
  EXPECT_EQ(t[11], double(1e-45f));
  const std::vector<double> ef = at(erf(x));
  EXPECT_EQ(ef[0], 1.0);
  EXPECT_EQ(ef[1], -1.0);
  EXPECT_TRUE(std::isnan(ef[2]));
  EXPECT_EQ(ef[3], 0.0);
  EXPECT_TRUE(std::signbit(ef[4]));
  EXPECT_NEAR(ef[5], 1.1283791670955126e-30, 1e-37);
  EXPECT_EQ(ef[7], 1.0);
  EXPECT_EQ(ef[8], -1.0);
  // Softmax over rows holding infinities and NaN, as PyTorch defines them.
  Tensor r = softmax(tensor({0.0f, -inf, 1.0f, -inf, -inf, -inf, nan, 0.0f, 1.0f}, {3, 3}), 1);
  std::vector<double> rv = r.tolist();
  EXPECT_NEAR(rv[0], 1 / (1 + std::exp(1.0)), 1e-7);
  EXPECT_EQ(rv[1], 0.0);
  for (int k = 3; k < 9; ++k) EXPECT_TRUE(std::isnan(rv[size_t(k)])) << k;
}

// The exact GELU and its gradient (both vectorised through verfc): relative error against libm in double,
// including the negative tail where GELU is tiny (a 1 + erf form would lose every digit there), and the
// gradient kernel reached through autograd on a contiguous run long enough for the vector body.
TEST(KernelReference, GeluAndGradientKeepRelativeAccuracyInTheTail) {
  std::vector<float> v;
  for (int i = -120000; i <= 120000; ++i) v.push_back(float(i) * 1e-4f);  // [-12, 12], odd length
  // Both paths: the AVX-512 kernels (gelu_avx512.h, where the CPU has them) and vec_math.h's portable loop.
  for (bool baseline : {false, true}) {
    SCOPED_TRACE(baseline ? "portable loop" : "AVX-512 kernel where available");
    cpu::force_baseline_for_testing(baseline);
    Tensor x = tensor(v).requires_grad_(true);
    Tensor y = gelu(x);
    y.backward(ones_like(y));
    const std::vector<double> xs = x.tolist(), ys = y.tolist(), gs = x.grad().tolist();
    double worst_y = 0, worst_g = 0;
    for (size_t i = 0; i < xs.size(); ++i) {
      const double a = xs[i], cdf = 0.5 * std::erfc(-a / std::sqrt(2.0)), pdf = std::exp(-0.5 * a * a) / std::sqrt(2 * M_PI);
      if (a != 0) worst_y = std::max(worst_y, std::abs(ys[i] - a * cdf) / std::abs(a * cdf));
      // The gradient crosses zero near x = -0.75 (Phi + x phi cancels there): bound it against its parts.
      worst_g = std::max(worst_g, std::abs(gs[i] - (cdf + a * pdf)) / (cdf + std::abs(a) * pdf));
    }
    EXPECT_LT(worst_y, 1e-6);  // x = -12: GELU ~ -1e-32, still ~6 correct digits (measured 4e-7)
    EXPECT_LT(worst_g, 1e-6);
    // Specials and a short ragged length (the masked tail of the kernel), forward and backward.
    const float inf = std::numeric_limits<float>::infinity();
    Tensor s = tensor({0.0f, std::nanf(""), inf, -40.0f, 40.0f, -0.5f, 3.0f}).requires_grad_(true);
    Tensor ys2 = gelu(s);
    ys2.backward(ones_like(ys2));
    const std::vector<double> sy = ys2.tolist(), sg = s.grad().tolist();
    EXPECT_EQ(sy[0], 0.0);
    EXPECT_TRUE(std::isnan(sy[1]) && std::isnan(sg[1]));
    EXPECT_EQ(sy[2], double(inf));
    EXPECT_EQ(sy[3], 0.0);
    EXPECT_EQ(sg[3], 0.0);
    EXPECT_EQ(sy[4], 40.0);
    EXPECT_EQ(sg[4], 1.0);
    EXPECT_NEAR(sy[5], -0.5 * 0.5 * std::erfc(0.5 / std::sqrt(2.0)), 1e-7);
    EXPECT_NEAR(sg[6], 0.5 * std::erfc(-3 / std::sqrt(2.0)) + 3 * std::exp(-4.5) / std::sqrt(2 * M_PI), 1e-6);
  }
  cpu::force_baseline_for_testing(false);
}

// Softmax and its backward on long rows (vectorised paths, odd lengths) against double-precision loops.
TEST(KernelReference, SoftmaxBackwardMatchesNaiveOnLongRows) {
  manual_seed(8);
  for (int64_t D : {1, 17, 1000, 50257}) {
    Tensor x0 = randn({3, D}) * 4.0, g = randn({3, D});
    for (bool lg : {false, true}) {
      Tensor x = x0.detach().requires_grad_(true);
      Tensor y = lg ? log_softmax(x, 1) : softmax(x, 1);
      y.backward(g);
      Tensor dx = x.grad();
      std::vector<double> xv = x.tolist(), gv = g.tolist(), yv = y.tolist(), dv = dx.tolist();
      for (int64_t o = 0; o < 3; ++o) {
        double mx = -INFINITY, sum = 0, dot = 0, gs = 0;
        for (int64_t k = 0; k < D; ++k) mx = std::max(mx, xv[size_t(o * D + k)]);
        for (int64_t k = 0; k < D; ++k) sum += std::exp(xv[size_t(o * D + k)] - mx);
        std::vector<double> p(static_cast<size_t>(D), 0.0);
        for (int64_t k = 0; k < D; ++k) p[size_t(k)] = std::exp(xv[size_t(o * D + k)] - mx) / sum;
        for (int64_t k = 0; k < D; ++k) { dot += gv[size_t(o * D + k)] * p[size_t(k)]; gs += gv[size_t(o * D + k)]; }
        for (int64_t k = 0; k < D; ++k) {
          const size_t i = size_t(o * D + k);
          const double yr = lg ? std::log(p[size_t(k)]) : p[size_t(k)];
          const double dr = lg ? gv[i] - p[size_t(k)] * gs : p[size_t(k)] * (gv[i] - dot);
          ASSERT_NEAR(yv[i], yr, 2e-6 * (1 + std::abs(yr))) << "D=" << D << " log=" << lg << " at " << i;
          ASSERT_NEAR(dv[i], dr, 2e-5 * (1 + std::abs(dr)) + 1e-6 * std::sqrt(double(D)) * std::abs(lg ? gs * p[size_t(k)] : p[size_t(k)])) << "D=" << D << " log=" << lg << " at " << i;
        }
      }
    }
  }
}

// The CPU copy's transposed path (16x16 tiles split over the threads: `x.t().contiguous()`, attention's K^T, HF
// Conv1D weights on load) against the view's own stride arithmetic: 2-D and batched transposes, sizes that are not
// multiples of 32, a row stride wider than the rows (a narrowed source), outer dims permuted too, every element size
// the path takes, on 1 and 2 threads. Values are small integers, exact in every dtype, so equality is exact.
TEST(KernelReference, TransposedCopyMatchesStrideArithmetic) {
  const int threads0 = get_num_threads();
  struct Case {
    Shape base;
    std::function<Tensor(const Tensor&)> view;
  };
  const std::vector<Case> cases = {
      {{129, 67}, [](const Tensor& b) { return b.t(); }},
      {{2048, 33}, [](const Tensor& b) { return b.t(); }},
      {{200, 100}, [](const Tensor& b) { return b.narrow(1, 3, 60).t(); }},  // ld 100 > 60 rows out
      {{3, 5, 67, 41}, [](const Tensor& b) { return b.transpose(2, 3); }},
      {{3, 5, 67, 41}, [](const Tensor& b) { return b.permute({1, 0, 3, 2}); }},
      {{2, 64, 4, 32}, [](const Tensor& b) { return b.permute({0, 2, 3, 1}); }},  // attention's K^T: (B,T,H,D)->(B,H,D,T)
  };
  for (DType dt : {DType::f32, DType::f64, DType::bf16, DType::i32, DType::i64})
    for (int threads : {1, 2})
      for (const Case& c : cases) {
        set_num_threads(threads);
        const int64_t n = numel(c.base);
        std::vector<double> vals(static_cast<size_t>(n));
        for (int64_t i = 0; i < n; ++i) vals[size_t(i)] = double(i % 251);
        const Tensor base = tensor(vals, c.base).to(dt);
        const Tensor v = c.view(base);
        const Tensor out = v.contiguous();
        ASSERT_TRUE(out.is_contiguous());
        ASSERT_EQ(out.shape(), v.shape());
        const std::vector<double> got = out.to(DType::f64).tolist();
        std::vector<int64_t> idx(size_t(v.dim()), 0);
        for (int64_t k = 0; k < v.numel(); ++k) {
          int64_t off = v.offset();
          for (int64_t d = 0; d < v.dim(); ++d) off += idx[size_t(d)] * v.stride(d);
          ASSERT_EQ(got[size_t(k)], vals[size_t(off)]) << "dtype " << int(dt) << " threads " << threads << " at " << k;
          for (int64_t d = v.dim() - 1; d >= 0; --d) {
            if (++idx[size_t(d)] < v.size(d)) break;
            idx[size_t(d)] = 0;
          }
        }
      }
  set_num_threads(threads0);
}

// A whole long tensor's sum (or mean) runs in 64K pieces on every thread: the result must match a plain double
// loop and must not depend on the thread count (the pieces are summed in order).
// A bias gradient's shape, sum over dim 0 of (rows, N): split into fixed pieces of rows across threads, the same
// result on any thread count, equal to the plain sum; a transposed view (strided columns) and a mean too.
TEST(KernelReference, ColumnSumOverManyRowsIsThreadCountIndependent) {
  const int threads0 = get_num_threads();
  manual_seed(6);
  for (DType dt : {DType::f32, DType::f64})
    for (auto [rows, n] : std::vector<std::pair<int64_t, int64_t>>{{2048, 384}, {1000, 7}, {257, 130}}) {
      const Tensor x = (randn({rows, n}) * 2.0 + 0.25).to(dt);
      const std::vector<double> v = x.to(DType::f64).reshape({-1}).tolist();
      std::vector<std::vector<double>> got;
      for (int threads : {1, 2, 3}) {
        set_num_threads(threads);
        got.push_back(sum(x, {0}).to(DType::f64).tolist());
        const std::vector<double> m = mean(x, {0}).to(DType::f64).tolist(), t = sum(x.t().contiguous().t(), {0}).to(DType::f64).tolist();
        for (int64_t j = 0; j < n; ++j) {
          double want = 0;
          for (int64_t i = 0; i < rows; ++i) want += v[size_t(i * n + j)];
          ASSERT_NEAR(got.back()[size_t(j)], want, 1e-6 * std::abs(want) + 1e-4) << "rows=" << rows << " col " << j;
          ASSERT_NEAR(m[size_t(j)], want / double(rows), 1e-6 * std::abs(want / double(rows)) + 1e-7);
          ASSERT_NEAR(t[size_t(j)], want, 1e-6 * std::abs(want) + 1e-4) << "strided columns, col " << j;
        }
      }
      EXPECT_EQ(got[0], got[1]) << "rows=" << rows << " dtype " << int(dt);
      EXPECT_EQ(got[0], got[2]) << "rows=" << rows << " dtype " << int(dt);
    }
  set_num_threads(threads0);
}

TEST(KernelReference, LongFullSumIsThreadCountIndependent) {
  const int threads0 = get_num_threads();
  manual_seed(5);
  for (DType dt : {DType::f32, DType::f64}) {
    const Tensor x = (randn({300001}) * 3.0 + 0.5).to(dt);
    const std::vector<double> v = x.to(DType::f64).tolist();
    double want = 0;
    for (double e : v) want += e;
    std::vector<double> sums, means;
    for (int threads : {1, 2}) {
      set_num_threads(threads);
      sums.push_back(sum(x).to(DType::f64).item());
      means.push_back(mean(x).to(DType::f64).item());
    }
    EXPECT_EQ(sums[0], sums[1]) << "dtype " << int(dt);
    EXPECT_EQ(means[0], means[1]) << "dtype " << int(dt);
    EXPECT_NEAR(sums[0], want, 1e-6 * std::abs(want) + 1e-3);
    EXPECT_NEAR(means[0], want / 300001.0, 1e-6 * std::abs(want / 300001.0) + 1e-8);
    // A strided view takes the general path and must agree.
    EXPECT_NEAR(sum(x.narrow(0, 0, 300000).view({1000, 300}).t()).to(DType::f64).item(),
                want - v.back(), 1e-6 * std::abs(want) + 1e-3);
  }
  set_num_threads(threads0);
}
