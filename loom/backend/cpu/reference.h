// Plain reference kernels (llm.c style): obviously correct loops that tests compare the fast kernels to.
#pragma once
#include <cstdint>

namespace loom::ref {

// C(M,N) = alpha * op(A) op(B) + beta * C, row-major.
template <class T>
void gemm(bool ta, bool tb, int64_t M, int64_t N, int64_t K, T alpha, const T* A, int64_t lda, const T* B,
          int64_t ldb, T beta, T* C, int64_t ldc) {
  for (int64_t i = 0; i < M; ++i)
    for (int64_t j = 0; j < N; ++j) {
      double acc = 0;
      for (int64_t k = 0; k < K; ++k) {
        const T a = ta ? A[k * lda + i] : A[i * lda + k];
        const T b = tb ? B[j * ldb + k] : B[k * ldb + j];
        acc += double(a) * double(b);
      }
      C[i * ldc + j] = T(alpha * acc + (beta == T(0) ? 0.0 : double(beta) * C[i * ldc + j]));
    }
}

}  // namespace loom::ref
