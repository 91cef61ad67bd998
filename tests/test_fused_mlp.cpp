// The GELU fused into products: cpu::sgemm's epilogues (sgemm_avx512.h) against the reference GEMM followed by GELU
// in double, and gelu_mlp (ops/fused_mlp.h) against the composite linear -> gelu -> linear, forward and all five
// gradients, on its fused path and on every fallback (f64, few rows, LOOM_ISA=baseline); GPTMLP fuses only plain
// Linears without hooks.
#include <gtest/gtest.h>

#include <cmath>
#include <tuple>
#include <vector>

#include "loom/backend/cpu/isa.h"
#include "loom/backend/cpu/reference.h"
#include "loom/backend/cpu/sgemm_avx512.h"
#include "loom/loom.h"
#include "loom/models/gpt.h"
#include "support/random_buffer.h"

using namespace loom;

namespace {

using loom::test::random_buffer;

double gelu_ref(double x, bool tanh_form) {
  if (!tanh_form) return 0.5 * x * (1.0 + std::erf(x / std::sqrt(2.0)));
  const double k = std::sqrt(2.0 / M_PI), c = 0.044715;
  return 0.5 * x * (1.0 + std::tanh(k * (x + c * x * x * x)));
}

double gelu_grad_ref(double x, bool tanh_form) {
  if (!tanh_form) return 0.5 * (1.0 + std::erf(x / std::sqrt(2.0))) + x * std::exp(-0.5 * x * x) / std::sqrt(2.0 * M_PI);
  const double k = std::sqrt(2.0 / M_PI), c = 0.044715, th = std::tanh(k * (x + c * x * x * x));
  return 0.5 * (1.0 + th) + 0.5 * x * (1.0 - th * th) * k * (1.0 + 3.0 * c * x * x);
}

// One product with an epilogue against the reference: forward kinds check aux (the pre-activation, to the GEMM's
// rounding) and C = gelu(aux) (to GELU's float accuracy); backward kinds check C = v * gelu'(pre) for a given pre.
void check_epilogue(cpu::Epilogue kind, int64_t M, int64_t N, int64_t K, bool ta, bool tb, float beta, bool with_bias) {
  const bool forward = kind == cpu::Epilogue::Gelu || kind == cpu::Epilogue::GeluTanh;
  const bool tanh_form = kind == cpu::Epilogue::GeluTanh || kind == cpu::Epilogue::GeluTanhGrad;
  const int64_t lda = ta ? M : K, ldb = tb ? K : N, ldc = N + 3, ldaux = N + 1;
  std::vector<float> A = random_buffer((ta ? K : M) * lda, 11), B = random_buffer((tb ? N : K) * ldb, 12);
  std::vector<float> C = random_buffer(M * ldc, 13), bias = random_buffer(N, 14);
  std::vector<float> aux = random_buffer(M * ldaux, 15);
  for (float& v : aux) v *= 3.0f;  // backward's pre-activations: a spread that reaches GELU's curved part and tails
  std::vector<float> v = C;  // the reference value before the epilogue: beta * C + A B (+ bias)
  ref::gemm<float>(ta, tb, M, N, K, 1.0f, A.data(), lda, B.data(), ldb, beta, v.data(), ldc);
  if (with_bias)
    for (int64_t i = 0; i < M; ++i)
      for (int64_t j = 0; j < N; ++j) v[size_t(i * ldc + j)] += bias[size_t(j)];
  const std::vector<float> pre_in = aux;
  cpu::sgemm(ta, tb, M, N, K, 1.0f, A.data(), lda, B.data(), ldb, beta, C.data(), ldc, with_bias ? bias.data() : nullptr,
             cpu::SgemmEpilogue{kind, aux.data(), ldaux});
  const float tol = 2e-6f * std::sqrt(float(K) + 1.0f);
  for (int64_t i = 0; i < M; ++i)
    for (int64_t j = 0; j < N; ++j) {
      const double want_v = v[size_t(i * ldc + j)], got = C[size_t(i * ldc + j)];
      const std::string at = "kind=" + std::to_string(int(kind)) + " M=" + std::to_string(M) + " N=" + std::to_string(N) +
                             " K=" + std::to_string(K) + " ta=" + std::to_string(ta) + " tb=" + std::to_string(tb) +
                             " beta=" + std::to_string(beta) + " at (" + std::to_string(i) + ", " + std::to_string(j) + ")";
      if (forward) {
        const double pre = aux[size_t(i * ldaux + j)];
        ASSERT_NEAR(pre, want_v, tol * (4.0 + std::abs(want_v))) << at;
        ASSERT_NEAR(got, gelu_ref(pre, tanh_form), 2e-6 * (1.0 + std::abs(pre))) << at;
      } else {
        const double d = gelu_grad_ref(pre_in[size_t(i * ldaux + j)], tanh_form);
        ASSERT_NEAR(got, want_v * d, tol * (4.0 + std::abs(want_v)) * std::abs(d) + 2e-6 * std::abs(want_v)) << at;
        ASSERT_EQ(aux[size_t(i * ldaux + j)], pre_in[size_t(i * ldaux + j)]) << "backward must not write aux, " << at;
      }
    }
  // aux's padding columns and C's are left alone.
  for (int64_t i = 0; i < M; ++i) {
    ASSERT_EQ(aux[size_t(i * ldaux + N)], pre_in[size_t(i * ldaux + N)]);
    for (int64_t j = N; j < ldc; ++j) ASSERT_EQ(C[size_t(i * ldc + j)], v[size_t(i * ldc + j)]) << "C padding at " << i;
  }
}

bool skip_without_avx512() {
  if (cpu::sgemm_avx512_available()) return false;
  std::printf("skipped: no AVX-512 on this CPU (or LOOM_ISA=baseline); gelu_mlp runs its composite\n");
  return true;
}

std::vector<double> values(const Tensor& t) { return t.defined() ? t.reshape({-1}).tolist() : std::vector<double>{}; }

void expect_close(const Tensor& got, const Tensor& want, double tol, const std::string& what) {
  ASSERT_EQ(got.defined(), want.defined()) << what;
  if (!want.defined()) return;
  ASSERT_EQ(got.shape(), want.shape()) << what;
  const std::vector<double> g = values(got), w = values(want);
  for (size_t i = 0; i < g.size(); ++i) ASSERT_NEAR(g[i], w[i], tol * (1.0 + std::abs(w[i]))) << what << " at " << i;
}

// gelu_mlp and the composite on fresh leaves with the same values: output and the five gradients.
void compare_with_composite(const Shape& xshape, int64_t inner, int64_t out, bool biases, const std::string& approx,
                            DType dt, double tol) {
  const int64_t in = xshape.back();
  manual_seed(uint64_t(in * 131 + inner + out));
  const Tensor x0 = randn(xshape).to(dt), w10 = (randn({inner, in}) * 0.3).to(dt), w20 = (randn({out, inner}) * 0.3).to(dt);
  const Tensor b10 = biases ? randn({inner}).to(dt) : Tensor(), b20 = biases ? randn({out}).to(dt) : Tensor();
  Shape gshape(xshape.begin(), xshape.end() - 1);
  gshape.push_back(out);
  const Tensor g = randn(gshape).to(dt);
  auto leaf = [](const Tensor& t) { return t.defined() ? t.detach().clone().requires_grad_(true) : Tensor(); };
  Tensor x1 = leaf(x0), w11 = leaf(w10), b11 = leaf(b10), w21 = leaf(w20), b21 = leaf(b20);
  Tensor x2 = leaf(x0), w12 = leaf(w10), b12 = leaf(b10), w22 = leaf(w20), b22 = leaf(b20);
  Tensor y1 = gelu_mlp(x1, w11, b11, w21, b21, approx);
  Tensor y2 = linear(gelu(linear(x2, w12, b12), approx), w22, b22);
  const std::string what = "x " + std::to_string(xshape.size()) + "-d rows=" + std::to_string(numel(xshape) / in) +
                           " approx=" + approx + " biases=" + std::to_string(biases);
  expect_close(y1, y2, tol, what + " output");
  y1.backward(g);
  y2.backward(g);
  expect_close(x1.grad(), x2.grad(), tol, what + " dx");
  expect_close(w11.grad(), w12.grad(), tol, what + " dw1");
  expect_close(w21.grad(), w22.grad(), tol, what + " dw2");
  if (biases) {
    expect_close(b11.grad(), b12.grad(), tol, what + " db1");
    expect_close(b21.grad(), b22.grad(), tol, what + " db2");
  }
}

}  // namespace

// Every epilogue on tile and K-slice edges (a second slice must apply it once, on finished values), every
// transpose layout, beta 0 and not, the bias in forward, one thread and the threaded splits by rows and columns.
TEST(SgemmEpilogue, MatchesReferenceThenGelu) {
  if (skip_without_avx512()) GTEST_SKIP();
  for (int threads : {1, 3}) {
    set_num_threads(threads);
    for (cpu::Epilogue kind : {cpu::Epilogue::Gelu, cpu::Epilogue::GeluTanh, cpu::Epilogue::GeluGrad, cpu::Epilogue::GeluTanhGrad})
      for (auto [M, N, K] : std::vector<std::tuple<int, int, int>>{{1, 1, 1}, {13, 33, 17}, {25, 65, 257}, {300, 40, 200}, {64, 512, 300}})
        for (bool ta : {false, true})
          for (bool tb : {false, true}) {
            const bool forward = kind == cpu::Epilogue::Gelu || kind == cpu::Epilogue::GeluTanh;
            check_epilogue(kind, M, N, K, ta, tb, 0.0f, forward);
            check_epilogue(kind, M, N, K, ta, tb, 0.5f, false);
          }
  }
  set_num_threads(1);
}

// K = 0 runs no kernel: C = beta * C (+ bias), then the epilogue.
TEST(SgemmEpilogue, EmptyKStillAppliesIt) {
  if (skip_without_avx512()) GTEST_SKIP();
  for (cpu::Epilogue kind : {cpu::Epilogue::Gelu, cpu::Epilogue::GeluGrad}) check_epilogue(kind, 5, 20, 0, false, true, 0.5f, false);
}

// The fused path (f32, rows above the few-row kernels' 16) against the composite: GPT's (B, T, C) input and a 2-d
// one, both GELU forms, with and without biases, one and two threads.
TEST(GeluMlp, FusedMatchesComposite) {
  if (skip_without_avx512()) GTEST_SKIP();
  for (int threads : {1, 2}) {
    set_num_threads(threads);
    for (const std::string approx : {"none", "tanh"}) {
      compare_with_composite({4, 32, 48}, 192, 48, true, approx, DType::f32, 2e-5);
      compare_with_composite({70, 40}, 130, 33, false, approx, DType::f32, 2e-5);
    }
  }
  set_num_threads(1);
}

// The fallbacks give the composite's own result: float64 (bit for bit), few rows (the backend declines), and a CPU
// without AVX-512.
TEST(GeluMlp, FallbacksMatchComposite) {
  compare_with_composite({2, 30, 16}, 64, 16, true, "none", DType::f64, 1e-12);
  compare_with_composite({3, 16}, 64, 16, true, "tanh", DType::f32, 1e-6);
  cpu::force_baseline_for_testing(true);
  compare_with_composite({4, 32, 48}, 192, 48, true, "none", DType::f32, 1e-6);
  cpu::force_baseline_for_testing(false);
}

TEST(GeluMlp, BadArgumentsSayWhat) {
  const Tensor x = randn({4, 8}), w1 = randn({16, 8}), w2 = randn({8, 16});
  EXPECT_THROW({ gelu_mlp(x, w1, Tensor(), w2, Tensor(), "erf"); }, Error);
  EXPECT_THROW({ gelu_mlp(randn({4, 9}), w1, Tensor(), w2, Tensor()); }, Error);
  EXPECT_THROW({ gelu_mlp(x, w1, randn({15}), w2, Tensor()); }, Error);
  EXPECT_THROW({ gelu_mlp(x, w1, Tensor(), randn({8, 15}), Tensor()); }, Error);
}

// GPTMLP runs the fused op for plain Linears, and each module as itself once c_fc has a hook: same output, and
// the hook sees c_fc's output.
TEST(GeluMlp, GptMlpKeepsHooksWorking) {
  models::GPTConfig c;
  c.vocab_size = 50, c.n_positions = 32, c.n_embd = 32, c.n_layer = 1, c.n_head = 2, c.activation_function = "gelu";
  models::GPTMLP mlp(c);
  manual_seed(3);
  const Tensor x = randn({2, 20, 32});
  Tensor fused;
  {
    NoGradGuard ng;
    fused = mlp.forward(x);
  }
  int calls = 0;
  const int64_t id = mlp.c_fc->register_forward_hook([&](nn::Module&, const Tensor&, const Tensor& y) {
    ++calls;
    EXPECT_EQ(y.shape(), (Shape{2, 20, 128}));
  });
  Tensor plain;
  {
    NoGradGuard ng;
    plain = mlp.forward(x);
  }
  mlp.c_fc->remove_forward_hook(id);
  EXPECT_EQ(calls, 1);
  expect_close(fused, plain, 1e-5, "GPTMLP fused vs per-module");
}
