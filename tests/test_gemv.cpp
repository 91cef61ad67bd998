// The GEMV path of CpuBackend::gemm (M == 1 or N == 1, as in one-token decoding) against the plain reference
// GEMM: every transpose layout, alpha/beta, padded leading dimensions, a NaN-filled C under beta == 0, and
// the small-M (a few sequences decoding at once) shapes: the skinny kernel for 2-16 rows times W^T, else sgemm.
#include <gtest/gtest.h>

#include <cmath>
#include <limits>
#include <vector>

#include "loom/backend/cpu/reference.h"
#include "loom/backend/cpu/skinny_gemm.h"
#include "loom/loom.h"
#include "support/random_buffer.h"

using namespace loom;

namespace {

using loom::test::random_buffer;

struct Case {
  int M, N, K;
  bool ta, tb;
  int pad;  // extra elements on every leading dimension (a strided view)
  float alpha, beta;
};

void check_case(const Case& c) {
  const int64_t rows_a = c.ta ? c.K : c.M, cols_a = c.ta ? c.M : c.K;
  const int64_t rows_b = c.tb ? c.N : c.K, cols_b = c.tb ? c.K : c.N;
  const int64_t lda = cols_a + c.pad, ldb = cols_b + c.pad, ldc = c.N + c.pad;
  std::vector<float> A = random_buffer(rows_a * lda, 1), B = random_buffer(rows_b * ldb, 2);
  std::vector<float> C = random_buffer(c.M * ldc, 3);
  if (c.beta == 0.0f)  // beta == 0 must overwrite C, never read it
    for (size_t i = 0; i < C.size(); ++i)
      if (i % 3 == 0) C[i] = std::numeric_limits<float>::quiet_NaN();
  const std::vector<float> C_orig = C;
  std::vector<float> C_ref = C;
  if (c.beta == 0.0f)
    for (float& v : C_ref) v = 0.0f;  // the reference loop does read C
  Tensor any = zeros({1});
  backend_for(any).gemm(c.ta, c.tb, c.M, c.N, c.K, c.alpha, A.data(), lda, B.data(), ldb, c.beta, C.data(), ldc,
                        DType::f32);
  ref::gemm<float>(c.ta, c.tb, c.M, c.N, c.K, c.alpha, A.data(), lda, B.data(), ldb, c.beta, C_ref.data(), ldc);
  for (int64_t i = 0; i < c.M; ++i)
    for (int64_t j = 0; j < c.N; ++j) {
      const float got = C[size_t(i * ldc + j)], want = C_ref[size_t(i * ldc + j)];
      ASSERT_NEAR(got, want, 1e-4f * (1.0f + std::abs(want)) * std::sqrt(float(c.K)))
          << "M=" << c.M << " N=" << c.N << " K=" << c.K << " ta=" << c.ta << " tb=" << c.tb << " pad=" << c.pad
          << " at (" << i << ", " << j << ")";
    }
  // Padding between rows of C is not part of the result and must be left alone.
  for (int64_t i = 0; i < c.M; ++i)
    for (int64_t j = c.N; j < ldc; ++j) {
      const float got = C[size_t(i * ldc + j)], orig = C_orig[size_t(i * ldc + j)];
      ASSERT_TRUE(got == orig || (std::isnan(got) && std::isnan(orig))) << "padding of C changed at (" << i << ", "
                                                                        << j << ")";
    }
}

}  // namespace

class GemvLayouts : public ::testing::TestWithParam<std::tuple<bool, bool, int>> {};

// M == 1 (a row times a matrix: the decode linear layers) in all four transpose layouts.
TEST_P(GemvLayouts, OneRowMatchesReference) {
  auto [ta, tb, pad] = GetParam();
  for (auto [N, K] : {std::pair{1, 1}, {7, 13}, {129, 67}, {300, 96}})
    for (auto [alpha, beta] : {std::pair{1.0f, 0.0f}, {1.5f, 0.25f}, {-0.5f, 1.0f}})
      check_case({1, N, K, ta, tb, pad, alpha, beta});
}

// N == 1 (a matrix times a column), including C's column stride ldc.
TEST_P(GemvLayouts, OneColumnMatchesReference) {
  auto [ta, tb, pad] = GetParam();
  for (auto [M, K] : {std::pair{1, 1}, {7, 13}, {129, 67}, {300, 96}})
    for (auto [alpha, beta] : {std::pair{1.0f, 0.0f}, {1.5f, 0.25f}, {-0.5f, 1.0f}})
      check_case({M, 1, K, ta, tb, pad, alpha, beta});
}

// Several sequences at once (M = 2..17): 2-16 rows times W^T take the skinny kernel, the rest sgemm.
TEST_P(GemvLayouts, SmallBatchMatchesReference) {
  auto [ta, tb, pad] = GetParam();
  for (int M : {2, 3, 4, 5, 8, 9, 16, 17}) {
    check_case({M, 96, 64, ta, tb, pad, 1.25f, 0.5f});
    check_case({M, 37, 29, ta, tb, pad, -0.75f, 0.0f});  // odd N and K: the kernel's tails
  }
}

INSTANTIATE_TEST_SUITE_P(AllTransposes, GemvLayouts,
                         ::testing::Combine(::testing::Bool(), ::testing::Bool(), ::testing::Values(0, 3)));

// The skinny kernel itself against the reference at every group size (1-8 rows per pass, balanced groups
// beyond 8), K below, at and past one 16-lane vector (the masked tail), odd N (the last row of W alone), and
// wide enough N * K for its parallel loop.
TEST(SkinnyGemm, MatchesReferenceForEveryRowCount) {
  for (int M = 1; M <= 20; ++M)
    for (auto [N, K] : {std::pair{1, 1}, {3, 15}, {8, 16}, {37, 29}, {33, 100}, {515, 520}}) {
      const int64_t lda = K + 2, ldw = K + 1, ldc = N + 3;
      std::vector<float> A = random_buffer(M * lda, 4), W = random_buffer(N * ldw, 5), C = random_buffer(M * ldc, 6);
      for (auto [alpha, beta] : {std::pair{1.0f, 0.0f}, {0.5f, -1.5f}}) {
        std::vector<float> got = C, want = C;
        if (beta == 0.0f) {
          for (float& v : got) v = std::numeric_limits<float>::quiet_NaN();  // must not be read
          for (int64_t i = 0; i < M; ++i)
            for (int64_t j = N; j < ldc; ++j) got[size_t(i * ldc + j)] = C[size_t(i * ldc + j)];
        }
        cpu::skinny_gemm_bt(M, N, K, alpha, A.data(), lda, W.data(), ldw, beta, got.data(), ldc);
        ref::gemm<float>(false, true, M, N, K, alpha, A.data(), lda, W.data(), ldw, beta, want.data(), ldc);
        for (int64_t i = 0; i < M; ++i)
          for (int64_t j = 0; j < ldc; ++j) {
            const float g = got[size_t(i * ldc + j)], w = want[size_t(i * ldc + j)];
            if (j >= N) ASSERT_EQ(g, C[size_t(i * ldc + j)]) << "padding of C changed at (" << i << ", " << j << ")";
            else ASSERT_NEAR(g, w, 1e-5f * (1.0f + std::abs(w)) * std::sqrt(float(K)))
                << "M=" << M << " N=" << N << " K=" << K << " beta=" << beta << " at (" << i << ", " << j << ")";
          }
      }
    }
}

// The decode shape end to end: linear on one row equals the same row of a batched linear.
TEST(Gemv, LinearOnOneRowMatchesBatchedRow) {
  manual_seed(11);
  Tensor W = randn({200, 48}), b = randn({200}), x = randn({4, 48});
  Tensor full = linear(x, W, b);
  for (int64_t i = 0; i < 4; ++i) {
    Tensor one = linear(x.narrow(0, i, 1), W, b);
    auto got = one.tolist(), want = full.narrow(0, i, 1).tolist();
    ASSERT_EQ(got.size(), want.size());
    for (size_t j = 0; j < got.size(); ++j) ASSERT_NEAR(got[j], want[j], 1e-4 * (1 + std::abs(want[j]))) << j;
  }
}

// loom's one-row GEMV (gemv_bt, what gemm and the fused-bias linear take for one row times W^T): 8-row blocks and
// the rows after the last block, K below, at and past a 16-lane vector (the masked tail), a bias or none, beta == 0
// over a NaN-filled y (never read) or not, and N * K on both sides of the parallel threshold, at 1 and 2 threads.
TEST(Gemv, RowKernelMatchesReference) {
  const int threads = get_num_threads();
  for (int t : {1, 2}) {
    set_num_threads(t);
    for (auto [N, K] : {std::pair{1, 1}, {7, 15}, {8, 16}, {9, 17}, {63, 100}, {1000, 96}, {2304, 768}, {131, 770}}) {
      const int64_t ldw = K + 3;
      const std::vector<float> x = random_buffer(K, 7), W = random_buffer(N * ldw, 8), bias = random_buffer(N, 9),
                               y0 = random_buffer(N, 10);
      for (bool with_bias : {false, true})
        for (auto [alpha, beta] : {std::pair{1.0f, 0.0f}, {-0.5f, 0.75f}}) {
          std::vector<float> y = y0;
          if (beta == 0.0f)
            for (float& v : y) v = std::numeric_limits<float>::quiet_NaN();
          if (!cpu::gemv_bt(N, K, alpha, x.data(), W.data(), ldw, beta, with_bias ? bias.data() : nullptr, y.data()))
            GTEST_SKIP() << "skipped: no AVX-512 (gemm takes OpenBLAS's sgemv)";
          for (int64_t n = 0; n < N; ++n) {
            double dot = 0;
            for (int64_t k = 0; k < K; ++k) dot += double(W[size_t(n * ldw + k)]) * x[size_t(k)];
            const double want = alpha * dot + (with_bias ? bias[size_t(n)] : 0.0) + (beta == 0.0f ? 0.0 : beta * y0[size_t(n)]);
            ASSERT_NEAR(y[size_t(n)], want, 1e-5 * (1 + std::abs(want)) * std::sqrt(double(K)))
                << "threads=" << t << " N=" << N << " K=" << K << " bias=" << with_bias << " beta=" << beta << " row " << n;
          }
        }
    }
  }
  set_num_threads(threads);
}

// A decode-sized linear with a bias (the fused gemm_bias_f32 path for one row) equals that row of the batched one
// (sgemm with the bias in its first store), and one row with no bias equals the batched row too.
TEST(Gemv, FusedBiasRowMatchesBatchedLinear) {
  manual_seed(12);
  Tensor W = randn({1000, 200}), b = randn({1000}), x = randn({3, 200});
  Tensor full = linear(x, W, b), full_nb = linear(x, W);
  for (int64_t i = 0; i < 3; ++i) {
    auto got = linear(x.narrow(0, i, 1), W, b).tolist(), want = full.narrow(0, i, 1).tolist();
    auto got_nb = linear(x.narrow(0, i, 1), W).tolist(), want_nb = full_nb.narrow(0, i, 1).tolist();
    ASSERT_EQ(got.size(), want.size());
    for (size_t j = 0; j < got.size(); ++j) {
      ASSERT_NEAR(got[j], want[j], 1e-4 * (1 + std::abs(want[j]))) << j;
      ASSERT_NEAR(got_nb[j], want_nb[j], 1e-4 * (1 + std::abs(want_nb[j]))) << j;
    }
  }
}
