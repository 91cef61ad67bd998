// GEMM through OpenBLAS: its Sapphire Rapids / SkylakeX kernels reach the machine's FMA ceiling, which
// a hand-written kernel here would only match (bench/gemm compares them). Row-major throughout.
#include <cblas.h>

#include "loom/backend/cpu/cpu_backend.h"
#include "loom/backend/cpu/gemm_bf16.h"

namespace loom::cpu {

namespace {
// One output row or column (a decode step's linear layers: x (1, in) times W^T): sgemm would pack all of
// the weight matrix on every call, a GEMV streams it once. Expressed as y = alpha * op(Mat) x + beta * y.
void gemv_f32(bool ta, bool tb, int64_t M, int64_t N, int64_t K, float alpha, const float* A, int64_t lda,
              const float* B, int64_t ldb, float beta, float* C, int64_t ldc) {
  // C is one row (M == 1, unit stride) or one column (N == 1, stride ldc).
  const int64_t n_out = M == 1 ? N : M, inc_c = M == 1 ? 1 : ldc;
  // beta == 0 must not read C (it may be uninitialised, even NaN), as sgemm does not.
  if (beta == 0.0f)
    for (int64_t i = 0; i < n_out; ++i) C[i * inc_c] = 0.0f;
  if (M == 1) {
    // c (N) = alpha * op(B)^T a, a = the one row of op(A): unit stride, or stride lda when A is (K, 1).
    const int inc_a = ta ? int(lda) : 1;
    if (tb) cblas_sgemv(CblasRowMajor, CblasNoTrans, int(N), int(K), alpha, B, int(ldb), A, inc_a, beta, C, 1);
    else cblas_sgemv(CblasRowMajor, CblasTrans, int(K), int(N), alpha, B, int(ldb), A, inc_a, beta, C, 1);
  } else {
    // c (M) = alpha * op(A) b, b = the one column of op(B): stride ldb when B is (K, 1), unit when (1, K).
    const int inc_b = tb ? 1 : int(ldb);
    if (ta) cblas_sgemv(CblasRowMajor, CblasTrans, int(K), int(M), alpha, A, int(lda), B, inc_b, beta, C, int(ldc));
    else cblas_sgemv(CblasRowMajor, CblasNoTrans, int(M), int(K), alpha, A, int(lda), B, inc_b, beta, C, int(ldc));
  }
}

// A few rows times W^T (linear on 2-4 prompts decoding at once): sgemm packs all of W per call, which costs
// as much as two GEMVs at M = 2; this streams each row of W once and dots it with every row of A.
template <int R>
void few_rows_times_bt(int64_t N, int64_t K, float alpha, const float* A, int64_t lda, const float* B, int64_t ldb,
                       float beta, float* C, int64_t ldc) {
  const float* a0 = A;
  const float* a1 = A + (R > 1 ? lda : 0);
  const float* a2 = A + (R > 2 ? 2 * lda : 0);
  const float* a3 = A + (R > 3 ? 3 * lda : 0);
  auto store = [&](int64_t n, const float* s) {
    for (int r = 0; r < R; ++r) {
      float& c = C[r * ldc + n];
      c = beta == 0.0f ? alpha * s[r] : alpha * s[r] + beta * c;  // beta == 0 never reads C
    }
  };
  // Two rows of W per pass: 2 * R independent accumulator chains keep the FMA units busy.
  const int64_t pairs = N / 2;
#pragma omp parallel for schedule(static) if (N * K >= (int64_t(1) << 18))
  for (int64_t p = 0; p < pairs; ++p) {
    const float* w = B + 2 * p * ldb;
    const float* v = w + ldb;
    float s0 = 0, s1 = 0, s2 = 0, s3 = 0, t0 = 0, t1 = 0, t2 = 0, t3 = 0;
#pragma omp simd reduction(+ : s0, s1, s2, s3, t0, t1, t2, t3)
    for (int64_t k = 0; k < K; ++k) {
      const float wk = w[k], vk = v[k];
      s0 += a0[k] * wk, t0 += a0[k] * vk;
      if constexpr (R > 1) s1 += a1[k] * wk, t1 += a1[k] * vk;
      if constexpr (R > 2) s2 += a2[k] * wk, t2 += a2[k] * vk;
      if constexpr (R > 3) s3 += a3[k] * wk, t3 += a3[k] * vk;
    }
    const float s[4] = {s0, s1, s2, s3}, t[4] = {t0, t1, t2, t3};
    store(2 * p, s);
    store(2 * p + 1, t);
  }
  if (N % 2) {
    const float* w = B + (N - 1) * ldb;
    float s[4] = {0, 0, 0, 0};
    for (int r = 0; r < R; ++r)
      for (int64_t k = 0; k < K; ++k) s[r] += A[r * lda + k] * w[k];
    store(N - 1, s);
  }
}
}  // namespace

void CpuBackend::gemm(bool ta, bool tb, int64_t M, int64_t N, int64_t K, double alpha, const void* A, int64_t lda,
                      const void* B, int64_t ldb, double beta, void* C, int64_t ldc, DType dt) {
  if (M == 0 || N == 0) return;
  const auto TA = ta ? CblasTrans : CblasNoTrans, TB = tb ? CblasTrans : CblasNoTrans;
  if (dt == DType::f32 && K > 0 && (M == 1 || N == 1)) {
    gemv_f32(ta, tb, M, N, K, float(alpha), static_cast<const float*>(A), lda, static_cast<const float*>(B), ldb,
             float(beta), static_cast<float*>(C), ldc);
  } else if (dt == DType::f32 && K > 0 && !ta && tb && M <= 4) {
    const auto* a = static_cast<const float*>(A);
    const auto* b = static_cast<const float*>(B);
    auto* c = static_cast<float*>(C);
    if (M == 2) few_rows_times_bt<2>(N, K, float(alpha), a, lda, b, ldb, float(beta), c, ldc);
    else if (M == 3) few_rows_times_bt<3>(N, K, float(alpha), a, lda, b, ldb, float(beta), c, ldc);
    else few_rows_times_bt<4>(N, K, float(alpha), a, lda, b, ldb, float(beta), c, ldc);
  } else if (dt == DType::f32) {
    cblas_sgemm(CblasRowMajor, TA, TB, int(M), int(N), int(K), float(alpha), static_cast<const float*>(A), int(lda),
                static_cast<const float*>(B), int(ldb), float(beta), static_cast<float*>(C), int(ldc));
  } else if (dt == DType::f64) {
    cblas_dgemm(CblasRowMajor, TA, TB, int(M), int(N), int(K), alpha, static_cast<const double*>(A), int(lda),
                static_cast<const double*>(B), int(ldb), beta, static_cast<double*>(C), int(ldc));
  } else {
    LOOM_FAIL("gemm: dtype ", dt, " is not supported (float32 or float64)");
  }
}

// AMX tiles where the CPU has them, else bf16-rounded copies through sgemm (gemm_bf16.cpp).
void CpuBackend::gemm_bf16(bool ta, bool tb, int64_t M, int64_t N, int64_t K, double alpha, const float* A, int64_t lda,
                           const float* B, int64_t ldb, double beta, float* C, int64_t ldc) {
  cpu::gemm_bf16(ta, tb, M, N, K, float(alpha), A, lda, B, ldb, float(beta), C, ldc);
}

}  // namespace loom::cpu
