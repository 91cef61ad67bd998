// e^x on 16 floats with AVX-512, for the kernels written with intrinsics (GELU, attention's softmax rows):
//   const __m512 e = loom::cpu::exp_avx512(x);
// n = round(x / ln 2), r = x - n ln 2 (Cody-Waite, two constants), e^r by vec_math.h's degree-6 polynomial, then
// times 2^n by vscalefps, which is exact and handles overflow to inf and gradual underflow to 0 in one
// instruction (vec_math.h's vexp, written for GCC's vectoriser, spends a chain of compares and selects on that
// and measured ~2.5x the cycles). The clamp keeps r finite for x = +-inf and keeps NaN (min/max return their
// second operand when one is NaN). Relative error ~1 ulp, as vexp.
#pragma once
#include "loom/backend/cpu/isa.h"

#if defined(LOOM_X86_KERNELS)
// GCC 12's AVX-512 headers start min/max from an "undefined" vector and then warn about it (see qgemm.cpp); the
// files that include this header are AVX-512 kernel files that silence the same warnings.
#pragma GCC diagnostic ignored "-Wmaybe-uninitialized"
#pragma GCC diagnostic ignored "-Wuninitialized"
#include <immintrin.h>

namespace loom::cpu {

LOOM_TARGET_AVX512 inline __m512 exp_avx512(__m512 x) {
  x = _mm512_max_ps(_mm512_set1_ps(-110.0f), _mm512_min_ps(_mm512_set1_ps(89.0f), x));
  const __m512 n = _mm512_roundscale_ps(_mm512_mul_ps(x, _mm512_set1_ps(1.44269504088896341f)),
                                        _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC);
  __m512 r = _mm512_fnmadd_ps(n, _mm512_set1_ps(0.693359375f), x);
  r = _mm512_fnmadd_ps(n, _mm512_set1_ps(-2.12194440e-4f), r);
  __m512 p = _mm512_set1_ps(1.9875691500e-4f);
  p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(1.3981999507e-3f));
  p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(8.3334519073e-3f));
  p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(4.1665795894e-2f));
  p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(1.6666665459e-1f));
  p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(5.0000001201e-1f));
  p = _mm512_fmadd_ps(_mm512_mul_ps(p, r), r, _mm512_add_ps(r, _mm512_set1_ps(1.0f)));
  return _mm512_scalef_ps(p, n);
}

}  // namespace loom::cpu
#endif
