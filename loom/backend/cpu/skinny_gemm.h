// A few rows times a weight matrix transposed, C = alpha * A W^T + beta * C: the linear layers of a decode
// step with one row per sequence decoding together (continuous batching: 2..16 rows). sgemm would pack all of
// W on every call and then run its kernel on a sliver of rows (measured: the packing alone was a quarter of a
// batched GPT-2 decode step); this streams each row of W from memory once and dots it with every row of A.
//   loom::cpu::skinny_gemm_bt(M, N, K, 1.0f, x, in, W, in, 0.0f, y, out);   // y (M, N) = x (M, K) W (N, K)^T
#pragma once
#include <cstdint>

namespace loom::cpu {

// The most rows skinny_gemm_bt is meant for: beyond them sgemm's blocking pays for its packing.
constexpr int64_t kSkinnyMaxRows = 16;

// A (M, K) with row stride lda, W (N, K) with row stride ldw, C (M, N) with row stride ldc, all row-major f32.
// beta == 0 never reads C (it may hold NaN). Any M >= 1 works; parallel over W's rows when the product is big.
void skinny_gemm_bt(int64_t M, int64_t N, int64_t K, float alpha, const float* A, int64_t lda, const float* W,
                    int64_t ldw, float beta, float* C, int64_t ldc);

// y (N) = alpha * W (N, K) x + bias + beta * y, W row-major with row stride ldw, bias optional (nullptr): one decode
// row through a linear layer, W streamed once by all threads (equal halves). beta == 0 never reads y. Returns false,
// with y untouched, where the CPU lacks the AVX-512 kernel (gemm then takes OpenBLAS's sgemv).
bool gemv_bt(int64_t N, int64_t K, float alpha, const float* x, const float* W, int64_t ldw, float beta,
             const float* bias, float* y);

}  // namespace loom::cpu
