// The AVX512-BF16 kernel behind gemm_bf16 (gemm_bf16.h) on CPUs without AMX, such as AMD Zen 4/5:
// VDPBF16PS multiplies 16 pairs of bf16 and adds both products to 16 f32 lanes, twice the multiply-adds of
// an f32 FMA per instruction. Call it only where cpu::has_avx512_bf16(): gemm_bf16 checks, this does not.
//   cpu::gemm_avx512bf16(false, true, M, N, K, 1.f, x, K, w, K, 0.f, y, N);   // y = bf16(x) bf16(w)^T
#pragma once
#include <cstdint>

namespace loom::cpu {

// C(M,N) = alpha * bf16(op(A)) bf16(op(B)) + beta * C, f32 accumulation; beta == 0 never reads C. Operands
// are rounded to nearest even; like every VDPBF16PS user, f32 denormals in A or B count as zero.
void gemm_avx512bf16(bool ta, bool tb, int64_t M, int64_t N, int64_t K, float alpha, const float* A, int64_t lda,
                     const float* B, int64_t ldb, float beta, float* C, int64_t ldc);

}  // namespace loom::cpu
