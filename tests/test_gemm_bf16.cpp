// The bf16 GEMM kernels (AMX and AVX512-BF16 where this CPU has them, convert+sgemm everywhere) against plain double loops over
// bf16-rounded operands: transposes, odd sizes, padded strides, alpha/beta, and the rounding itself.
#include <gtest/gtest.h>

#include <cmath>
#include <cstdio>
#include <limits>
#include <vector>

#include "loom/backend/cpu/gemm_bf16.h"
#include "loom/backend/cpu/isa.h"
#include "loom/loom.h"

using namespace loom;
using cpu::Bf16Kernel;

namespace {

std::vector<Bf16Kernel> kernels_here() {
  std::vector<Bf16Kernel> k = {Bf16Kernel::Convert};
  if (cpu::amx_bf16_available()) k.push_back(Bf16Kernel::Amx);
  if (cpu::has_avx512_bf16()) k.push_back(Bf16Kernel::Avx512);
  else std::printf("[ note ] avx512_bf16 kernel not tested: %s\n",
                   cpu::has_avx512() ? "CPU lacks avx512bf16" : cpu::isa_reason(false).c_str());
  return k;
}

std::vector<float> random_floats(size_t n, uint64_t seed) {
  manual_seed(seed);
  Tensor t = randn({int64_t(n)});
  return std::vector<float>(t.data<float>(), t.data<float>() + n);
}

}  // namespace

class Bf16GemmShapes : public ::testing::TestWithParam<std::tuple<int, int, int, bool, bool>> {};

TEST_P(Bf16GemmShapes, MatchesReferenceWithinF32Summation) {
  auto [M, N, K, ta, tb] = GetParam();
  // Leading dimensions padded by 3 so every kernel honours the strides.
  const int64_t lda = (ta ? M : K) + 3, ldb = (tb ? K : N) + 3, ldc = N + 5;
  std::vector<float> A = random_floats(size_t((ta ? K : M) * lda), 1), B = random_floats(size_t((tb ? N : K) * ldb), 2);
  std::vector<float> C0 = random_floats(size_t(M * ldc), 3);
  // |A| |B| products bound the f32 summation error: K * 2^-24 * sum |a b|.
  std::vector<float> Aa(A), Ba(B), bound(size_t(M * ldc), 0.0f);
  for (auto& v : Aa) v = std::abs(v);
  for (auto& v : Ba) v = std::abs(v);
  cpu::ref::gemm_bf16(ta, tb, M, N, K, 1.0f, Aa.data(), lda, Ba.data(), ldb, 0.0f, bound.data(), ldc);
  for (float beta : {0.0f, 0.25f}) {
    std::vector<float> ref(C0);
    cpu::ref::gemm_bf16(ta, tb, M, N, K, 1.5f, A.data(), lda, B.data(), ldb, beta, ref.data(), ldc);
    for (Bf16Kernel k : kernels_here()) {
      SCOPED_TRACE(std::string(cpu::bf16_kernel_name(k)) + " beta=" + std::to_string(beta));
      std::vector<float> C(C0);
      if (beta == 0.0f)  // beta = 0 must not read C: NaN there may not leak into the result
        for (int64_t i = 0; i < M; ++i) C[size_t(i * ldc)] = std::numeric_limits<float>::quiet_NaN();
      cpu::gemm_bf16(k, ta, tb, M, N, K, 1.5f, A.data(), lda, B.data(), ldb, beta, C.data(), ldc);
      for (int64_t i = 0; i < M; ++i) {
        for (int64_t j = 0; j < ldc; ++j) {
          const size_t p = size_t(i * ldc + j);
          if (j >= N) { ASSERT_EQ(C[p], C0[p]) << "wrote outside C at " << i << "," << j; continue; }
          const double tol = 1.5 * (K + 2) * 6e-8 * bound[p] + 1e-7 * std::abs(ref[p]);
          ASSERT_NEAR(C[p], ref[p], tol) << "at " << i << "," << j;
        }
      }
    }
  }
}

INSTANTIATE_TEST_SUITE_P(OddShapes, Bf16GemmShapes,
                         ::testing::Values(std::make_tuple(1, 1, 1, false, false), std::make_tuple(1, 7, 13, false, true),
                                           std::make_tuple(13, 1, 7, true, false), std::make_tuple(31, 37, 41, true, true),
                                           std::make_tuple(33, 17, 65, false, false), std::make_tuple(64, 96, 128, false, true),
                                           std::make_tuple(100, 70, 300, true, false), std::make_tuple(129, 67, 255, true, true),
                                           std::make_tuple(40, 700, 33, false, true),
                                           // K over the AMX kernel's 1024-deep chunks; A^T B with N < M (C^T path)
                                           std::make_tuple(45, 50, 2100, false, true), std::make_tuple(50, 45, 2100, true, false),
                                           // several K chunks and column panels (the AVX512-BF16 kernel's work split)
                                           std::make_tuple(70, 300, 1500, false, false), std::make_tuple(33, 200, 3000, true, true)));

// K = 1 and B = 1: C is exactly bf16(A), so this checks the operand rounding bit for bit against loom::bf16
// (halfway cases to even, overflow to inf, NaN kept).
TEST(Bf16Gemm, RoundsOperandsLikeLoomBf16) {
  std::vector<float> a = {1.0f, 1.00390625f /*1 + 2^-8: halfway, to even*/, 1.01171875f /*1 + 3 * 2^-8: up*/, -3.14159f,
                          3.3961514e38f /*rounds to inf*/, 1e-20f, 65504.0f, 0.1f, -0.0f,
                          std::numeric_limits<float>::infinity(), std::numeric_limits<float>::quiet_NaN()};
  std::vector<float> r = random_floats(200, 9);
  a.insert(a.end(), r.begin(), r.end());
  const int64_t M = int64_t(a.size());
  const float one = 1.0f;
  for (Bf16Kernel k : kernels_here()) {
    std::vector<float> c(size_t(M), 0.0f);
    cpu::gemm_bf16(k, false, false, M, 1, 1, 1.0f, a.data(), 1, &one, 1, 0.0f, c.data(), 1);
    for (int64_t i = 0; i < M; ++i) {
      const float want = float(bf16(a[size_t(i)]));
      if (std::isnan(want)) EXPECT_TRUE(std::isnan(c[size_t(i)])) << cpu::bf16_kernel_name(k) << " at " << i;
      else EXPECT_EQ(c[size_t(i)], want) << cpu::bf16_kernel_name(k) << " at " << i << " input " << a[size_t(i)];
    }
  }
  EXPECT_EQ(cpu::round_to_bf16(1.00390625f), 1.0f);
  EXPECT_EQ(cpu::round_to_bf16(1.01171875f), 1.015625f);
}

// Operands exactly representable in bf16 (small integers) give exact products and exactly representable sums,
// so every kernel must agree with f32 sgemm to the bit; values that are not representable must not.
TEST(Bf16Gemm, ExactOnBf16ValuesAndRoundsTheRest) {
  const int64_t M = 37, N = 45, K = 70;
  manual_seed(11);
  Tensor A = randint(-8, 9, {M, K}).to(DType::f32), B = randint(-8, 9, {K, N}).to(DType::f32);
  Tensor want = mm(A, B);
  for (Bf16Kernel k : kernels_here()) {
    Tensor C = zeros({M, N});
    cpu::gemm_bf16(k, false, false, M, N, K, 1.0f, A.data<float>(), K, B.data<float>(), N, 0.0f, C.data<float>(), N);
    EXPECT_EQ(C.tolist(), want.tolist()) << cpu::bf16_kernel_name(k);
    Tensor A2 = A + 1.0 / 1024;  // k + 2^-10 needs more than bf16's 8 significant bits for |k| >= 1
    Tensor C2 = zeros({M, N});
    cpu::gemm_bf16(k, false, false, M, N, K, 1.0f, A2.data<float>(), K, B.data<float>(), N, 0.0f, C2.data<float>(), N);
    EXPECT_GT(max(abs(C2 - mm(A2, B))).item(), 1e-3) << cpu::bf16_kernel_name(k);
  }
}

TEST(Bf16Gemm, KernelChoiceFollowsTheCpu) {
  // Amx exactly when the CPU and OS allow it, else Avx512 where the CPU has avx512bf16 (or
  // LOOM_BF16_KERNEL=convert forced the fallback).
  const char* env = std::getenv("LOOM_BF16_KERNEL");
  const bool forced = env && std::string(env) == "convert";
  EXPECT_EQ(cpu::bf16_kernel() == Bf16Kernel::Amx, cpu::amx_bf16_available() && !forced);
  EXPECT_EQ(cpu::bf16_kernel() == Bf16Kernel::Avx512, !cpu::amx_bf16_available() && cpu::has_avx512_bf16() && !forced);
  float a = 1, b = 1, c = 0;
  if (!cpu::amx_bf16_available()) {
    EXPECT_THROW(cpu::gemm_bf16(Bf16Kernel::Amx, false, false, 1, 1, 1, 1.0f, &a, 1, &b, 1, 0.0f, &c, 1), Error);
  }
  if (!cpu::has_avx512_bf16()) {
    EXPECT_THROW(cpu::gemm_bf16(Bf16Kernel::Avx512, false, false, 1, 1, 1, 1.0f, &a, 1, &b, 1, 0.0f, &c, 1), Error);
  }
}
