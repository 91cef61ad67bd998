// AVX-512 GELU forward and backward (gelu_avx512.h): 16 values per step, the ragged end under a mask.
#include "loom/backend/cpu/gelu_avx512.h"

#include "loom/backend/cpu/gelu_vec_avx512.h"
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
