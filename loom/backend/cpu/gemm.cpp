// The float GEMM entry: GEMV and few-row shapes to their streaming kernels, the rest to loom's AVX-512 sgemm
// where the CPU has AVX-512 (sgemm_avx512.h says why not OpenBLAS's there), else OpenBLAS; float64 to
// OpenBLAS. Row-major throughout.
#include <cblas.h>

#include "loom/backend/cpu/cpu_backend.h"
#include "loom/backend/cpu/gemm_bf16.h"
#include "loom/backend/cpu/sgemm_avx512.h"
#include "loom/backend/cpu/skinny_gemm.h"

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

}  // namespace

void CpuBackend::gemm(bool ta, bool tb, int64_t M, int64_t N, int64_t K, double alpha, const void* A, int64_t lda,
                      const void* B, int64_t ldb, double beta, void* C, int64_t ldc, DType dt) {
  if (M == 0 || N == 0) return;
  const auto TA = ta ? CblasTrans : CblasNoTrans, TB = tb ? CblasTrans : CblasNoTrans;
  if (dt == DType::f32 && K > 0 && !ta && tb && M == 1 &&
      gemv_bt(N, K, float(alpha), static_cast<const float*>(A), static_cast<const float*>(B), ldb, float(beta),
              nullptr, static_cast<float*>(C))) {
    // one row through a linear layer (a decode step): loom's GEMV (skinny_gemm.h)
  } else if (dt == DType::f32 && K > 0 && (M == 1 || N == 1)) {
    gemv_f32(ta, tb, M, N, K, float(alpha), static_cast<const float*>(A), lda, static_cast<const float*>(B), ldb,
             float(beta), static_cast<float*>(C), ldc);
  } else if (dt == DType::f32 && K > 0 && !ta && tb && M <= kSkinnyMaxRows) {
    // A few rows times W^T (a decode step of several sequences): W streamed once instead of packed per call.
    skinny_gemm_bt(M, N, K, float(alpha), static_cast<const float*>(A), lda, static_cast<const float*>(B), ldb,
                   float(beta), static_cast<float*>(C), ldc);
  } else if (dt == DType::f32 && sgemm_avx512_available()) {
    sgemm(ta, tb, M, N, K, float(alpha), static_cast<const float*>(A), lda, static_cast<const float*>(B), ldb,
          float(beta), static_cast<float*>(C), ldc);
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

// The products that gemm() gives to loom's sgemm take their bias in its first store, and so does a single row times
// W^T (gemv_bt, a decode step's linear layers); other GEMVs, the few-row products and non-AVX-512 CPUs say no
// (linear() then broadcasts the bias and accumulates).
bool CpuBackend::gemm_bias_f32(bool ta, bool tb, int64_t M, int64_t N, int64_t K, const float* A, int64_t lda,
                               const float* B, int64_t ldb, const float* bias, float* C, int64_t ldc) {
  if (M == 1 && !ta && tb && K > 0 && gemv_bt(N, K, 1.0f, A, B, ldb, 0.0f, bias, C)) return true;
  if (M <= 1 || N <= 1 || K <= 0 || (!ta && tb && M <= kSkinnyMaxRows) || !sgemm_avx512_available()) return false;
  sgemm(ta, tb, M, N, K, 1.0f, A, lda, B, ldb, 0.0f, C, ldc, bias);
  return true;
}

// loom's sgemm with a GELU epilogue (sgemm_avx512.h); the shapes that gemm() sends to GEMV or the few-row kernels, and
// CPUs without AVX-512, say no (a decode step is better served by those kernels plus a separate activation).
bool CpuBackend::gemm_gelu_f32(bool ta, bool tb, int64_t M, int64_t N, int64_t K, const float* A, int64_t lda,
                               const float* B, int64_t ldb, const float* bias, float* C, int64_t ldc, float* pre,
                               GeluEpilogue kind) {
  const bool backward = kind == GeluEpilogue::Backward || kind == GeluEpilogue::BackwardTanh;
  LOOM_CHECK(pre && !(backward && bias), "gemm_gelu_f32: needs pre, and takes no bias in backward");
  if (M <= kSkinnyMaxRows || N <= 1 || K <= 0 || !sgemm_avx512_available()) return false;
  const Epilogue e = kind == GeluEpilogue::Forward       ? Epilogue::Gelu
                     : kind == GeluEpilogue::ForwardTanh ? Epilogue::GeluTanh
                     : kind == GeluEpilogue::Backward    ? Epilogue::GeluGrad
                                                         : Epilogue::GeluTanhGrad;
  sgemm(ta, tb, M, N, K, 1.0f, A, lda, B, ldb, 0.0f, C, ldc, bias, SgemmEpilogue{e, pre, ldc});
  return true;
}

// AMX tiles where the CPU has them, else bf16-rounded copies through sgemm (gemm_bf16.cpp).
void CpuBackend::gemm_bf16(bool ta, bool tb, int64_t M, int64_t N, int64_t K, double alpha, const float* A, int64_t lda,
                           const float* B, int64_t ldb, double beta, float* C, int64_t ldc) {
  cpu::gemm_bf16(ta, tb, M, N, K, float(alpha), A, lda, B, ldb, float(beta), C, ldc);
}

}  // namespace loom::cpu
