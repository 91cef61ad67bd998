// Register-blocked products of the small tiles inside fused kernels (flash attention), where a BLAS call
// per 64x64 tile would cost more than the product.
//   loom::cpu::small_gemm<float>(M, N, K, A, lda, 1, B, ldb, C, ldc, /*accumulate=*/true);  // C += A B
// A is read through (row, k) strides, so a transposed tile needs no copy; B and C are row-major.
#pragma once
#include <cstdint>

namespace loom::cpu {

// MR rows x NC columns of C held in registers over the whole K loop (4 x 64 floats = 16 AVX-512 registers;
// the including file sets prefer-vector-width=512, else GCC splits them into 32 AVX2 halves and spills).
template <class T, int MR, int NC>
inline void gemm_block(int64_t K, const T* A, int64_t ars, int64_t aks, const T* B, int64_t ldb, T* C, int64_t ldc,
                       bool accumulate) {
  T c[MR][NC];
  for (int r = 0; r < MR; ++r)
#pragma omp simd
    for (int j = 0; j < NC; ++j) c[r][j] = accumulate ? C[r * ldc + j] : T(0);
  for (int64_t k = 0; k < K; ++k) {
    const T* b = B + k * ldb;
    for (int r = 0; r < MR; ++r) {
      const T a = A[r * ars + k * aks];
#pragma omp simd
      for (int j = 0; j < NC; ++j) c[r][j] += a * b[j];
    }
  }
  for (int r = 0; r < MR; ++r)
#pragma omp simd
    for (int j = 0; j < NC; ++j) C[r * ldc + j] = c[r][j];
}

// Row blocks hold 16 vectors of C: 4 rows of a 64-float panel, 8 of a 32-float one, 16 of a 16-float one. (A
// narrow panel in 4-row blocks kept 8 or 4 accumulators: too few chains for two FMA pipes of latency 4, and as
// many loads as FMAs; attention's products with a 32-wide head are such panels.)
template <class T, int NC>
inline void gemm_columns(int64_t M, int64_t K, const T* A, int64_t ars, int64_t aks, const T* B, int64_t ldb, T* C,
                         int64_t ldc, bool accumulate) {
  constexpr int kRegsPerRow = int(NC * sizeof(T) / 64) > 0 ? int(NC * sizeof(T) / 64) : 1;
  constexpr int kRows = 16 / kRegsPerRow;
  int64_t r = 0;
  if constexpr (kRows > 4)
    for (; r + kRows <= M; r += kRows)
      gemm_block<T, kRows, NC>(K, A + r * ars, ars, aks, B, ldb, C + r * ldc, ldc, accumulate);
  for (; r + 4 <= M; r += 4) gemm_block<T, 4, NC>(K, A + r * ars, ars, aks, B, ldb, C + r * ldc, ldc, accumulate);
  for (; r < M; ++r) gemm_block<T, 1, NC>(K, A + r * ars, ars, aks, B, ldb, C + r * ldc, ldc, accumulate);
}

// C(M, N) = A(M, K) B(K, N), or C += A B when `accumulate`.
template <class T>
void small_gemm(int64_t M, int64_t N, int64_t K, const T* A, int64_t ars, int64_t aks, const T* B, int64_t ldb, T* C,
                int64_t ldc, bool accumulate) {
  constexpr int W = sizeof(T) == 4 ? 64 : 32;  // 4 AVX-512 registers per row of C
  int64_t j = 0;
  for (; j + W <= N; j += W) gemm_columns<T, W>(M, K, A, ars, aks, B + j, ldb, C + j, ldc, accumulate);
  if (j + W / 2 <= N) {
    gemm_columns<T, W / 2>(M, K, A, ars, aks, B + j, ldb, C + j, ldc, accumulate);
    j += W / 2;
  }
  if (j + W / 4 <= N) {
    gemm_columns<T, W / 4>(M, K, A, ars, aks, B + j, ldb, C + j, ldc, accumulate);
    j += W / 4;
  }
  for (; j < N; ++j)  // the last few columns, one at a time
    for (int64_t r = 0; r < M; ++r) {
      T acc = accumulate ? C[r * ldc + j] : T(0);
      for (int64_t k = 0; k < K; ++k) acc += A[r * ars + k * aks] * B[k * ldb + j];
      C[r * ldc + j] = acc;
    }
}

}  // namespace loom::cpu
