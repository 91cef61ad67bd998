// loom's AVX-512 sgemm (backend/cpu/sgemm_avx512.h) against the plain reference GEMM: every transpose layout,
// alpha/beta (beta == 0 over a NaN-filled C must not read it), padded leading dimensions (padding of C left
// alone), shapes on and off the 12 x 32 tile and the 256-deep K slice, one thread and the threaded split by
// columns and by rows; and CpuBackend::gemm taking it for the shapes it serves.
#include <gtest/gtest.h>

#include <cmath>
#include <limits>
#include <vector>

#include "loom/backend/cpu/isa.h"
#include "loom/backend/cpu/reference.h"
#include "loom/backend/cpu/sgemm_avx512.h"
#include "loom/loom.h"
#include "support/random_buffer.h"

using namespace loom;

namespace {

using loom::test::random_buffer;

// Runs cpu::sgemm (through_backend: CpuBackend::gemm) and the reference on one case and compares.
// with_bias: cpu::sgemm's bias (N values added to every row) as well.
void check(int64_t M, int64_t N, int64_t K, bool ta, bool tb, int pad, float alpha, float beta, bool through_backend,
           bool with_bias = false) {
  const int64_t rows_a = ta ? K : M, cols_a = ta ? M : K, rows_b = tb ? N : K, cols_b = tb ? K : N;
  const int64_t lda = cols_a + pad, ldb = cols_b + pad, ldc = N + pad;
  std::vector<float> A = random_buffer(rows_a * lda, 1), B = random_buffer(rows_b * ldb, 2);
  std::vector<float> C = random_buffer(M * ldc, 3);
  if (beta == 0.0f)
    for (int64_t i = 0; i < M; ++i)
      for (int64_t j = 0; j < N; ++j) C[size_t(i * ldc + j)] = std::numeric_limits<float>::quiet_NaN();
  const std::vector<float> orig = C;
  std::vector<float> want = C;
  if (beta == 0.0f)
    for (float& v : want) v = 0.0f;  // the reference reads C
  const std::vector<float> bias = random_buffer(N, 4);
  if (through_backend)
    backend_for(Device()).gemm(ta, tb, M, N, K, alpha, A.data(), lda, B.data(), ldb, beta, C.data(), ldc, DType::f32);
  else
    cpu::sgemm(ta, tb, M, N, K, alpha, A.data(), lda, B.data(), ldb, beta, C.data(), ldc, with_bias ? bias.data() : nullptr);
  ref::gemm<float>(ta, tb, M, N, K, alpha, A.data(), lda, B.data(), ldb, beta, want.data(), ldc);
  if (with_bias)
    for (int64_t i = 0; i < M; ++i)
      for (int64_t j = 0; j < N; ++j) want[size_t(i * ldc + j)] += bias[size_t(j)];
  for (int64_t i = 0; i < M; ++i)
    for (int64_t j = 0; j < ldc; ++j) {
      const float g = C[size_t(i * ldc + j)], w = want[size_t(i * ldc + j)];
      if (j >= N) {
        ASSERT_TRUE(g == orig[size_t(i * ldc + j)]) << "padding of C changed at (" << i << ", " << j << ")";
        continue;
      }
      // float32 sums of K products of unit normals: error grows like sqrt(K) ulps of the magnitude.
      ASSERT_NEAR(g, w, 2e-6f * (4.0f + std::abs(w)) * std::sqrt(float(K) + 1.0f))
          << "M=" << M << " N=" << N << " K=" << K << " ta=" << ta << " tb=" << tb << " pad=" << pad
          << " alpha=" << alpha << " beta=" << beta << " bias=" << with_bias << " at (" << i << ", " << j << ")";
    }
}

bool skip_without_avx512() {
  if (cpu::sgemm_avx512_available()) return false;
  std::printf("skipped: no AVX-512 on this CPU (or LOOM_ISA=baseline); OpenBLAS runs every GEMM\n");
  return true;
}

}  // namespace

class SgemmAvx512Layouts : public ::testing::TestWithParam<std::tuple<bool, bool, int>> {};

// Shapes around the tile (12 x 32) and slice (256) edges, one thread.
TEST_P(SgemmAvx512Layouts, MatchesReferenceOnTileEdges) {
  if (skip_without_avx512()) GTEST_SKIP();
  auto [ta, tb, pad] = GetParam();
  set_num_threads(1);
  for (auto [M, N, K] : std::vector<std::tuple<int, int, int>>{
           {1, 1, 1}, {2, 3, 5}, {12, 32, 16}, {11, 31, 15}, {13, 33, 17}, {24, 64, 256}, {25, 65, 257},
           {36, 96, 512}, {7, 100, 300}, {100, 7, 300}, {97, 45, 700}})
    for (auto [alpha, beta] : {std::pair{1.0f, 0.0f}, {0.75f, 0.5f}, {-1.25f, 1.0f}})
      check(M, N, K, ta, tb, pad, alpha, beta, false);
}

// The threaded split: by columns (N wide), by rows (N narrow, M tall), and panels fewer than threads.
TEST_P(SgemmAvx512Layouts, ThreadedSplitMatchesReference) {
  if (skip_without_avx512()) GTEST_SKIP();
  auto [ta, tb, pad] = GetParam();
  set_num_threads(3);  // an odd count: panels do not divide evenly
  for (auto [M, N, K] : std::vector<std::tuple<int, int, int>>{
           {64, 512, 300}, {300, 40, 200}, {200, 33, 129}, {50, 70, 600}})
    for (auto [alpha, beta] : {std::pair{1.0f, 0.0f}, {0.5f, -2.0f}})
      check(M, N, K, ta, tb, pad, alpha, beta, false);
  set_num_threads(1);
}

// The bias folded into the first K slice's accumulators: tile and slice edges (a second slice must not add it
// again), beta 0 over NaN and beta != 0, one thread and the threaded splits.
TEST_P(SgemmAvx512Layouts, BiasIsAddedOnceToEveryRow) {
  if (skip_without_avx512()) GTEST_SKIP();
  auto [ta, tb, pad] = GetParam();
  for (int threads : {1, 3}) {
    set_num_threads(threads);
    for (auto [M, N, K] : std::vector<std::tuple<int, int, int>>{
             {1, 1, 1}, {11, 31, 15}, {13, 33, 17}, {25, 65, 257}, {300, 40, 600}, {64, 512, 300}})
      for (auto [alpha, beta] : {std::pair{1.0f, 0.0f}, {0.75f, 0.5f}})
        check(M, N, K, ta, tb, pad, alpha, beta, false, true);
  }
  set_num_threads(1);
}

INSTANTIATE_TEST_SUITE_P(AllTransposes, SgemmAvx512Layouts,
                         ::testing::Combine(::testing::Bool(), ::testing::Bool(), ::testing::Values(0, 5)));

// alpha == 0 and K == 0 scale C by beta (BLAS's rule), beta == 0 writing zeros over NaN.
TEST(SgemmAvx512, ZeroAlphaOrEmptyKScalesC) {
  if (skip_without_avx512()) GTEST_SKIP();
  for (int K : {0, 8})
    for (float beta : {0.0f, 2.0f}) {
      std::vector<float> A(size_t(4 * 8), 1.0f), B(size_t(8 * 5), 1.0f), C(size_t(4 * 5), 3.0f);
      if (beta == 0.0f) C.assign(C.size(), std::numeric_limits<float>::quiet_NaN());
      cpu::sgemm(false, false, 4, 5, K, K == 0 ? 1.0f : 0.0f, A.data(), 8, B.data(), 5, beta, C.data(), 5);
      for (float v : C) ASSERT_EQ(v, beta == 0.0f ? 0.0f : 6.0f) << "K=" << K << " beta=" << beta;
    }
}

// The backend's f32 GEMM (what Linear, conv's im2col products and attention call) on shapes of the workloads:
// the MLP's layers at batch 64 forward and backward, a GPT-2 prompt's projection.
TEST(SgemmAvx512, BackendGemmMatchesReferenceOnWorkloadShapes) {
  set_num_threads(2);
  check(64, 512, 784, false, true, 0, 1.0f, 0.0f, true);   // x W^T
  check(64, 784, 512, false, false, 0, 1.0f, 0.0f, true);  // dY W
  check(512, 784, 64, true, false, 0, 1.0f, 1.0f, true);   // dW += dY^T X
  check(128, 2304, 768, false, true, 0, 1.0f, 0.0f, true);
  set_num_threads(1);
}

// linear() with a bias takes the backend's fused product where it can (loom's sgemm) and the broadcast +
// accumulate path elsewhere (GEMV, few-row products, LOOM_ISA=baseline): both equal x W^T + b, and the
// gradients are those of the composite.
TEST(SgemmAvx512, LinearBiasMatchesCompositeOnEveryPath) {
  set_num_threads(2);
  for (bool baseline : {false, true}) {
    cpu::force_baseline_for_testing(baseline);
    for (auto [rows, in, out] : std::vector<std::tuple<int, int, int>>{{2048, 128, 384}, {64, 784, 10}, {3, 50, 70}, {1, 40, 33}}) {
      manual_seed(uint64_t(rows + in + out));
      Tensor x = randn({rows, in}).requires_grad_(true), w = randn({out, in}).requires_grad_(true);
      Tensor b = randn({out}).requires_grad_(true);
      Tensor y = linear(x, w, b);
      Tensor want = matmul(x, w.t()) + b;
      const std::vector<double> yv = y.tolist(), wv = want.tolist();
      for (size_t i = 0; i < yv.size(); ++i)
        ASSERT_NEAR(yv[i], wv[i], 1e-4 * (1 + std::abs(wv[i]))) << "rows=" << rows << " baseline=" << baseline << " at " << i;
      Tensor g = randn({rows, out});
      y.backward(g);
      const std::vector<double> db = b.grad().tolist(), dbw = sum(g, {0}).tolist();
      for (size_t j = 0; j < db.size(); ++j) ASSERT_NEAR(db[j], dbw[j], 1e-3 * (1 + std::abs(dbw[j])));
    }
  }
  cpu::force_baseline_for_testing(false);
  set_num_threads(1);
}

// LOOM_ISA=baseline's switch (the test hook): the backend then leaves every product to OpenBLAS and still
// computes the same result.
TEST(SgemmAvx512, BaselinePathStillMatches) {
  cpu::force_baseline_for_testing(true);
  EXPECT_FALSE(cpu::sgemm_avx512_available());
  check(33, 70, 90, false, true, 2, 1.0f, 0.5f, true);
  cpu::force_baseline_for_testing(false);
}
