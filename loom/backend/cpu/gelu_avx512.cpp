// AVX-512 GELU forward and backward (gelu_avx512.h): 16 values per step, the ragged end under a mask.
#include "loom/backend/cpu/gelu_avx512.h"

#include "loom/backend/cpu/exp_avx512.h"
#include "loom/backend/cpu/isa.h"
#include "loom/core/error.h"

#if defined(LOOM_X86_KERNELS)
#pragma GCC diagnostic ignored "-Wmaybe-uninitialized"  // GCC 12's AVX-512 headers (see qgemm.cpp)
#pragma GCC diagnostic ignored "-Wuninitialized"
#include <immintrin.h>
#endif

namespace loom::cpu {

#if defined(LOOM_X86_KERNELS)

namespace {

// Phi(x) and phi(x) as vec_math.h's normal_cdf_pdf computes them (see there for the why of each step). x is
// clamped to +-15 first, past which Phi is 0 or 1 and phi 0 in float; NaN stays NaN.
LOOM_TARGET_AVX512 inline void normal_cdf_pdf_avx512(__m512 x, __m512& cdf, __m512& pdf) {
  const __m512 xc = _mm512_max_ps(_mm512_set1_ps(-15.0f), _mm512_min_ps(_mm512_set1_ps(15.0f), x));
  const __m512 h = _mm512_mul_ps(xc, xc);
  const __m512 l = _mm512_fmsub_ps(xc, xc, h);
  const __m512 g = exp_avx512(_mm512_mul_ps(h, _mm512_set1_ps(-0.5f)));
  pdf = _mm512_mul_ps(_mm512_mul_ps(g, _mm512_set1_ps(0.39894228040143268f)),
                      _mm512_fnmadd_ps(l, _mm512_set1_ps(0.5f), _mm512_set1_ps(1.0f)));
  const __m512 ax = _mm512_abs_ps(xc);
  const __m512 t = _mm512_div_ps(_mm512_set1_ps(1.0f),
                                 _mm512_fmadd_ps(ax, _mm512_set1_ps(0.35355339059327376f), _mm512_set1_ps(1.0f)));
  __m512 p = _mm512_set1_ps(0.17087277f);
  p = _mm512_fmadd_ps(p, t, _mm512_set1_ps(-0.82215223f));
  p = _mm512_fmadd_ps(p, t, _mm512_set1_ps(1.48851587f));
  p = _mm512_fmadd_ps(p, t, _mm512_set1_ps(-1.13520398f));
  p = _mm512_fmadd_ps(p, t, _mm512_set1_ps(0.27886807f));
  p = _mm512_fmadd_ps(p, t, _mm512_set1_ps(-0.18628806f));
  p = _mm512_fmadd_ps(p, t, _mm512_set1_ps(0.09678418f));
  p = _mm512_fmadd_ps(p, t, _mm512_set1_ps(0.37409196f));
  p = _mm512_fmadd_ps(p, t, _mm512_set1_ps(1.00002368f));
  p = _mm512_fmadd_ps(p, t, _mm512_set1_ps(-1.26551223f));
  const __m512 e2 = exp_avx512(_mm512_fnmadd_ps(l, _mm512_set1_ps(0.5f), p));
  const __m512 half_erfc = _mm512_mul_ps(_mm512_mul_ps(_mm512_mul_ps(t, g), e2), _mm512_set1_ps(0.5f));
  const __mmask16 pos = _mm512_cmp_ps_mask(x, _mm512_setzero_ps(), _CMP_GT_OQ);
  cdf = _mm512_mask_sub_ps(half_erfc, pos, _mm512_set1_ps(1.0f), half_erfc);
}

LOOM_TARGET_AVX512 void gelu_avx512_impl(float* y, const float* x, int64_t n) {
  for (int64_t i = 0; i < n; i += 16) {
    const __mmask16 m = n - i >= 16 ? __mmask16(0xFFFF) : __mmask16((1u << (n - i)) - 1);
    const __m512 v = _mm512_maskz_loadu_ps(m, x + i);
    __m512 cdf, pdf;
    normal_cdf_pdf_avx512(v, cdf, pdf);
    _mm512_mask_storeu_ps(y + i, m, _mm512_mul_ps(v, cdf));
  }
}

LOOM_TARGET_AVX512 void gelu_backward_avx512_impl(float* dx, const float* g, const float* x, int64_t n) {
  for (int64_t i = 0; i < n; i += 16) {
    const __mmask16 m = n - i >= 16 ? __mmask16(0xFFFF) : __mmask16((1u << (n - i)) - 1);
    const __m512 v = _mm512_maskz_loadu_ps(m, x + i);
    __m512 cdf, pdf;
    normal_cdf_pdf_avx512(v, cdf, pdf);
    const __m512 d = _mm512_fmadd_ps(v, pdf, cdf);
    _mm512_mask_storeu_ps(dx + i, m, _mm512_mul_ps(_mm512_maskz_loadu_ps(m, g + i), d));
  }
}

}  // namespace

void gelu_avx512(float* y, const float* x, int64_t n) {
  LOOM_CHECK(has_avx512(), "gelu_avx512 called on a CPU without AVX-512");
  gelu_avx512_impl(y, x, n);
}
void gelu_backward_avx512(float* dx, const float* g, const float* x, int64_t n) {
  LOOM_CHECK(has_avx512(), "gelu_backward_avx512 called on a CPU without AVX-512");
  gelu_backward_avx512_impl(dx, g, x, n);
}

#else

void gelu_avx512(float*, const float*, int64_t) { LOOM_FAIL("gelu_avx512: not an x86-64 build"); }
void gelu_backward_avx512(float*, const float*, const float*, int64_t) {
  LOOM_FAIL("gelu_backward_avx512: not an x86-64 build");
}

#endif

}  // namespace loom::cpu
