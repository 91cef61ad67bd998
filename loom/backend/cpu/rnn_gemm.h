// The per-timestep matrix product of the recurrent layers (float32): a few batch rows times a weight matrix that
// stays the same for all T steps. BLAS repacks the weight on every call, which costs as much as the product when
// only 16-32 rows multiply it; here it is packed once per layer call and each step streams the packed panels.
//   rnn_detail::PackedWeights w = rnn_detail::pack_weights(w_hh, H, 4 * H, H, /*transpose=*/true);  // B = W_hh^T
//   rnn_detail::gemm_packed(N, h, ldh, w, /*accumulate=*/true, gates, ldg);                    // gates += h W_hh^T
#pragma once
#include <cstdint>

#include "loom/core/tensor.h"

namespace loom::cpu::rnn_detail {

constexpr int64_t kPanel = 32;  // columns per packed panel: two 16-float vectors

// B (K x N) as column panels: panel p holds B[k][p * kPanel + c] at p * K * kPanel + k * kPanel + c, zero padded.
struct PackedWeights {
  Tensor data;  // float32, 64-byte aligned
  int64_t K = 0, N = 0;
};

// Packs B = b (row-major, row stride ldb), or its transpose when `transpose` (then b is N x K).
PackedWeights pack_weights(const float* b, int64_t K, int64_t N, int64_t ldb, bool transpose);

// C (M x N, row stride ldc) = A (M x K, row stride lda) @ B (+ bias[n] when given), added to C's old values
// when accumulate. Serial: callers run it on their own slice of rows.
void gemm_packed(int64_t M, const float* A, int64_t lda, const PackedWeights& B, bool accumulate, float* C,
                 int64_t ldc, const float* bias = nullptr);

// The same for many rows (all timesteps at once), split into row blocks shared by the threads.
void gemm_packed_rows(int64_t M, const float* A, int64_t lda, const PackedWeights& B, bool accumulate, float* C,
                      int64_t ldc, const float* bias = nullptr);

}  // namespace loom::cpu::rnn_detail
