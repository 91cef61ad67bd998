// GEMM through OpenBLAS: its Sapphire Rapids / SkylakeX kernels reach the machine's FMA ceiling, which
// a hand-written kernel here would only match (bench/gemm compares them). Row-major throughout.
#include <cblas.h>

#include "loom/backend/cpu/cpu_backend.h"

namespace loom::cpu {

void CpuBackend::gemm(bool ta, bool tb, int64_t M, int64_t N, int64_t K, double alpha, const void* A, int64_t lda,
                      const void* B, int64_t ldb, double beta, void* C, int64_t ldc, DType dt) {
  if (M == 0 || N == 0) return;
  const auto TA = ta ? CblasTrans : CblasNoTrans, TB = tb ? CblasTrans : CblasNoTrans;
  if (dt == DType::f32) {
    cblas_sgemm(CblasRowMajor, TA, TB, int(M), int(N), int(K), float(alpha), static_cast<const float*>(A), int(lda),
                static_cast<const float*>(B), int(ldb), float(beta), static_cast<float*>(C), int(ldc));
  } else if (dt == DType::f64) {
    cblas_dgemm(CblasRowMajor, TA, TB, int(M), int(N), int(K), alpha, static_cast<const double*>(A), int(lda),
                static_cast<const double*>(B), int(ldb), beta, static_cast<double*>(C), int(ldc));
  } else {
    LOOM_FAIL("gemm: dtype ", dt, " is not supported (float32 or float64)");
  }
}

}  // namespace loom::cpu
