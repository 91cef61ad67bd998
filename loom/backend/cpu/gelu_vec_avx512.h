// GELU on one AVX-512 vector of floats, for the kernels that apply it in registers: the array kernels of
// gelu_avx512.h and the sgemm's GELU epilogues (sgemm_avx512.h, a GPT MLP's first product).
//   __m512 cdf, pdf; normal_cdf_pdf_avx512(x, cdf, pdf);  // exact GELU = x * cdf, its derivative cdf + x * pdf
//   __m512 s = gelu_tanh_gate_avx512(x);                 // tanh GELU = x * s
// Include only from files compiled with AVX-512 kernels (LOOM_X86_KERNELS) and call only where has_avx512().
#pragma once
#include "loom/backend/cpu/exp_avx512.h"
#include "loom/backend/cpu/isa.h"

#if defined(LOOM_X86_KERNELS)
#include <immintrin.h>

namespace loom::cpu {

// Phi(x) and phi(x) with one exponential. x is clamped to +-15 first, past which Phi is 0 or 1 and phi 0 in
// float; NaN stays NaN. As in vec_math.h's normal_cdf_pdf, x^2 is carried as h + l (FMA gives the rounding error
// l), so e^(-x^2/2) = e^(-h/2) (1 - l/2) keeps its relative accuracy where x^2/2 is large, and the tail uses
// erfc(|x|/sqrt 2) rather than 1 + erf (which cancels to nothing for x < -4). Where vec_math.h writes erfc as
// t e^(-z^2 + P(t)) (Press et al.'s erfcc, t = 1/(1 + z/2)), a second exponential, this kernel writes it as
// e^(-z^2) erfcx(z) with erfcx (= e^(z^2) erfc(z)) a degree-10 polynomial in the same t, fitted for relative error
// over z in [0, 15/sqrt 2] (t in [0.159, 1]; 7e-9 with exact coefficients, 2.1e-7 evaluated in float). So one
// exponential serves Phi and phi, and t comes from a 14-bit reciprocal and one Newton step instead of a
// division: ~30% fewer instructions than the two-exponential form, worst relative error over [-12, 12] in
// tests/test_kernels.cpp below 1e-6 either way.
LOOM_TARGET_AVX512 inline void normal_cdf_pdf_avx512(__m512 x, __m512& cdf, __m512& pdf) {
  const __m512 xc = _mm512_max_ps(_mm512_set1_ps(-15.0f), _mm512_min_ps(_mm512_set1_ps(15.0f), x));
  const __m512 h = _mm512_mul_ps(xc, xc);
  const __m512 l = _mm512_fmsub_ps(xc, xc, h);
  const __m512 g = _mm512_mul_ps(exp_avx512(_mm512_mul_ps(h, _mm512_set1_ps(-0.5f))),
                                 _mm512_fnmadd_ps(l, _mm512_set1_ps(0.5f), _mm512_set1_ps(1.0f)));  // e^(-x^2/2)
  pdf = _mm512_mul_ps(g, _mm512_set1_ps(0.39894228040143268f));
  const __m512 d = _mm512_fmadd_ps(_mm512_abs_ps(xc), _mm512_set1_ps(0.35355339059327376f), _mm512_set1_ps(1.0f));
  const __m512 r = _mm512_rcp14_ps(d);
  const __m512 t = _mm512_mul_ps(r, _mm512_fnmadd_ps(d, r, _mm512_set1_ps(2.0f)));  // 1/d to ~2^-28
  __m512 p = _mm512_set1_ps(0.026276784f);
  p = _mm512_fmadd_ps(p, t, _mm512_set1_ps(-0.201432183f));
  p = _mm512_fmadd_ps(p, t, _mm512_set1_ps(0.619378805f));
  p = _mm512_fmadd_ps(p, t, _mm512_set1_ps(-0.935740411f));
  p = _mm512_fmadd_ps(p, t, _mm512_set1_ps(0.655773282f));
  p = _mm512_fmadd_ps(p, t, _mm512_set1_ps(-0.234727174f));
  p = _mm512_fmadd_ps(p, t, _mm512_set1_ps(0.278375864f));
  p = _mm512_fmadd_ps(p, t, _mm512_set1_ps(0.225220934f));
  p = _mm512_fmadd_ps(p, t, _mm512_set1_ps(0.284994632f));
  p = _mm512_fmadd_ps(p, t, _mm512_set1_ps(0.281872034f));
  p = _mm512_fmadd_ps(p, t, _mm512_set1_ps(7.43914916e-06f));  // erfcx(z)
  const __m512 half_erfc = _mm512_mul_ps(_mm512_mul_ps(g, p), _mm512_set1_ps(0.5f));
  const __mmask16 pos = _mm512_cmp_ps_mask(x, _mm512_setzero_ps(), _CMP_GT_OQ);
  cdf = _mm512_mask_sub_ps(half_erfc, pos, _mm512_set1_ps(1.0f), half_erfc);
}

// The tanh GELU's gate 0.5 (1 + tanh(u)), u = sqrt(2/pi) (x + 0.044715 x^3), written as the equal sigmoid(2u) =
// 1 / (1 + e^(-2u)): one exponential and no cancellation in 1 + tanh(u) for negative x (e^(-2u) overflows to inf
// for x below about -9, giving a gate of 0, as tanh's rounds to). NaN stays NaN.
LOOM_TARGET_AVX512 inline __m512 gelu_tanh_gate_avx512(__m512 x) {
  const __m512 x2 = _mm512_mul_ps(x, x);
  const __m512 u2 = _mm512_mul_ps(_mm512_mul_ps(x, _mm512_set1_ps(-1.5957691216057308f)),
                                  _mm512_fmadd_ps(x2, _mm512_set1_ps(0.044715f), _mm512_set1_ps(1.0f)));  // -2u
  return _mm512_div_ps(_mm512_set1_ps(1.0f), _mm512_add_ps(_mm512_set1_ps(1.0f), exp_avx512(u2)));
}

// d/dx of x * s for the tanh GELU, given x and its gate s: s + 2 x s (1 - s) u'(x), u' = sqrt(2/pi) (1 + 3 * 0.044715 x^2)
// (from 1 - tanh(u)^2 = 4 s (1 - s)).
LOOM_TARGET_AVX512 inline __m512 gelu_tanh_grad_avx512(__m512 x, __m512 s) {
  const __m512 du2 = _mm512_mul_ps(_mm512_set1_ps(1.5957691216057308f),
                                   _mm512_fmadd_ps(_mm512_mul_ps(x, x), _mm512_set1_ps(0.134145f), _mm512_set1_ps(1.0f)));
  const __m512 xs1s = _mm512_mul_ps(_mm512_mul_ps(x, s), _mm512_sub_ps(_mm512_set1_ps(1.0f), s));
  return _mm512_fmadd_ps(xs1s, du2, s);
}

}  // namespace loom::cpu
#endif
