// The exact (erf) GELU and its gradient over contiguous floats, written with AVX-512 intrinsics.
//   if (loom::cpu::has_avx512()) loom::cpu::gelu_avx512(y, x, n); else ... vgelu(x[i]) per value ...
// Why a kernel of its own: the same math through GCC's vectoriser (vec_math.h's vgelu, the portable path) ran at
// ~1.7 ms per million values on this Zen 5, 4x slower than this kernel, and GELU's forward and backward were ~14% of a
// W3 training step. The exponential here is a degree-6 polynomial scaled by vscalefps, which handles overflow,
// gradual underflow and NaN in one instruction where the portable vexp needs a chain of compares and selects.
// Same formulas as vec_math.h's normal_cdf_pdf (tests/test_kernels.cpp checks both against libm in double).
#pragma once
#include <cstdint>

namespace loom::cpu {

// y[i] = x[i] * Phi(x[i]); single-threaded (callers split the range). Requires has_avx512().
void gelu_avx512(float* y, const float* x, int64_t n);
// dx[i] = g[i] * (Phi(x[i]) + x[i] * phi(x[i])); single-threaded. Requires has_avx512().
void gelu_backward_avx512(float* dx, const float* g, const float* x, int64_t n);

}  // namespace loom::cpu
