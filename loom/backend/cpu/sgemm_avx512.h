// loom's own float32 GEMM for AVX-512 CPUs: C = alpha * op(A) op(B) + beta * C, row-major.
//   if (loom::cpu::sgemm_avx512_available()) loom::cpu::sgemm(ta, tb, M, N, K, 1.f, A, lda, B, ldb, 0.f, C, ldc);
// Why not OpenBLAS's: the OpenBLAS that Debian ships (0.3.21) runs its Haswell (AVX2) kernels on this machine's
// Zen 5 CPU (its environment pins OPENBLAS_CORETYPE=Haswell, because that old build's AVX-512 kernels compute
// wrong results or crash on processors it does not know). Zen 5 executes two 512-bit FMAs per cycle, so AVX2
// kernels reach half of its ceiling: sgemm 1024^3 measured ~200 GFLOP/s on 2 cores through OpenBLAS, where the
// same shape through OpenBLAS's SkylakeX table (not allowed here) reached ~390. This kernel is the blocked
// GEMM of Goto / BLIS (packed A and B panels, a register-blocked micro-kernel) written for AVX-512, tested against
// the reference loops (tests/test_sgemm_avx512.cpp); bench/gemm_bench compares it with OpenBLAS.
#pragma once
#include <cstdint>

namespace loom::cpu {

// What the product's last store does to each value v of alpha * op(A) op(B) + beta * C [+ bias], with aux an M x N
// matrix (row stride ldaux) at C's positions. Applied to each tile while it is in L1, so an activation after a
// Linear costs no pass over memory of its own:
//   Gelu, GeluTanh:          aux = v (the pre-activation, which backward needs), C = gelu(v)  (exact / tanh form)
//   GeluGrad, GeluTanhGrad:  C = v * gelu'(aux)  (v: the gradient of gelu's output; aux: gelu's input)
enum class Epilogue : unsigned char { None, Gelu, GeluTanh, GeluGrad, GeluTanhGrad };
struct SgemmEpilogue {
  Epilogue kind = Epilogue::None;
  float* aux = nullptr;
  int64_t ldaux = 0;
};

// Whether the AVX-512 kernel runs here (isa.h: has_avx512(), so LOOM_ISA=baseline turns it off).
bool sgemm_avx512_available();

// C (M, N) = alpha * op(A) (M, K) * op(B) (K, N) + beta * C [+ bias]; op(X) = X^T when its flag is set. Leading
// dimensions as BLAS's row-major ones. beta == 0 never reads C (it may hold NaN), as sgemm does not. bias (N
// values, or null) is added to every row of C, folded into the product's first store; epilogue (above) acts on its last. Parallel over C's columns
// or rows (OpenMP) when the product is big enough and the caller is not already parallel.
// Requires sgemm_avx512_available().
void sgemm(bool ta, bool tb, int64_t M, int64_t N, int64_t K, float alpha, const float* A, int64_t lda,
           const float* B, int64_t ldb, float beta, float* C, int64_t ldc, const float* bias = nullptr,
           const SgemmEpilogue& epilogue = {});

// sgemm() where available, else OpenBLAS's cblas_sgemm: for the kernels that need a plain product of packed
// operands (bf16 emulation, per-sample gradients) without CpuBackend::gemm's GEMV and few-row routing.
void sgemm_or_blas(bool ta, bool tb, int64_t M, int64_t N, int64_t K, float alpha, const float* A, int64_t lda,
                   const float* B, int64_t ldb, float beta, float* C, int64_t ldc);

}  // namespace loom::cpu
