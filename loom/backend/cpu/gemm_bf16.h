// bf16 matrix products with f32 accumulation: C(M,N) = alpha * bf16(op(A)) bf16(op(B)) + beta * C, where
// A, B and C are f32 in memory and bf16(.) rounds each operand to bfloat16 (nearest even, as loom::bf16).
//   cpu::gemm_bf16(false, true, M, N, K, 1.f, x, K, w, K, 0.f, y, N);   // y = x w^T, products in bf16
// Kernels: AMX tiles (TDPBF16PS, 16x16 f32 accumulators) where CPUID reports amx_bf16 and Linux grants the
// tile state; else AVX512-BF16 (VDPBF16PS, 16 f32 lanes each summing bf16 pairs; AMD Zen 4/5, Cooper Lake)
// on the same packed operands; otherwise operands rounded to bf16 values in f32 and sgemm (same products,
// exact in f32, so the kernels differ only in summation order). beta == 0 never reads C, as in BLAS.
#pragma once
#include <cstdint>

namespace loom::cpu {

enum class Bf16Kernel { Amx, Avx512, Convert };

// Which kernel gemm_bf16 uses on this machine (Amx, else Avx512 when available; LOOM_BF16_KERNEL=convert
// forces Convert).
Bf16Kernel bf16_kernel();
bool amx_bf16_available();  // CPUID amx_bf16 + amx_tile, and arch_prctl granted XTILEDATA (asked once)
const char* bf16_kernel_name(Bf16Kernel k);

void gemm_bf16(bool ta, bool tb, int64_t M, int64_t N, int64_t K, float alpha, const float* A, int64_t lda,
               const float* B, int64_t ldb, float beta, float* C, int64_t ldc);
// The same with an explicit kernel (tests, benchmarks). Amx or Avx512 where unavailable raises an error.
void gemm_bf16(Bf16Kernel kernel, bool ta, bool tb, int64_t M, int64_t N, int64_t K, float alpha, const float* A,
               int64_t lda, const float* B, int64_t ldb, float beta, float* C, int64_t ldc);

// f32 -> bf16 bits, round to nearest even, NaN kept (loom::bf16's rule), and the bf16-valued f32 back.
uint16_t to_bf16_bits(float f);
float round_to_bf16(float f);

namespace ref {
// Plain loops in double over bf16-rounded operands: the reference the kernels are tested against.
void gemm_bf16(bool ta, bool tb, int64_t M, int64_t N, int64_t K, float alpha, const float* A, int64_t lda,
               const float* B, int64_t ldb, float beta, float* C, int64_t ldc);
}  // namespace ref

}  // namespace loom::cpu
