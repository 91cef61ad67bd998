// Fused ReLU + 2x2 max pooling in AVX-512, laid out as max_pool_2x2.cpp: per output row, 32 input columns of
// the window's two input rows split into even and odd columns, the four taps folded with PyTorch's rule (a
// larger value or a NaN replaces the current one). relu is applied to the window's max, which equals the max
// of relu'd values: relu is monotonic, keeps NaN, and maps every non-positive value to +0. The gradient of the
// pair reaches the winning tap only where that max is > 0 (relu's backward masks y <= 0 and NaN), so a tap
// code of 4 there makes the backward write zeros, as the unfused pair does bit for bit.
#include "loom/backend/cpu/relu_max_pool_2x2.h"

#include <algorithm>

#include "loom/backend/cpu/isa.h"
#include "loom/backend/cpu/loop.h"
#include "loom/backend/cpu/max_pool_2x2.h"
#if defined(LOOM_X86_KERNELS)
#include <immintrin.h>
#endif

namespace loom::cpu {

#if defined(LOOM_X86_KERNELS)
namespace {

struct RowMasks {
  __mmask16 lo, hi, out;  // input columns [0, 16), [16, 32) of this step, and its outputs
};

inline RowMasks row_masks(int64_t n) {  // n = outputs in this step, 1..16
  const int64_t cols = 2 * n;
  return {__mmask16(cols >= 16 ? 0xFFFF : (1u << cols) - 1), __mmask16(cols <= 16 ? 0 : (1u << (cols - 16)) - 1),
          __mmask16((1u << n) - 1)};
}

LOOM_TARGET_AVX512 inline void fold_avx512(__m512& m, __m512i& t, __m512 v, int tap) {
  const __mmask16 take = _mm512_cmp_ps_mask(v, m, _CMP_GT_OQ) | _mm512_cmp_ps_mask(v, v, _CMP_UNORD_Q);
  m = _mm512_mask_mov_ps(m, take, v);
  t = _mm512_mask_mov_epi32(t, take, _mm512_set1_epi32(tap));
}

// One output row from input rows r0, r1.
LOOM_TARGET_AVX512 void relu_pool_row_avx512(float* y, uint8_t* taps, const float* r0, const float* r1, int64_t OW) {
  const __m512i even = _mm512_set_epi32(30, 28, 26, 24, 22, 20, 18, 16, 14, 12, 10, 8, 6, 4, 2, 0);
  const __m512i odd = _mm512_add_epi32(even, _mm512_set1_epi32(1));
  for (int64_t ow0 = 0; ow0 < OW; ow0 += 16) {
    const RowMasks k = row_masks(std::min<int64_t>(16, OW - ow0));
    const int64_t c = 2 * ow0;
    const __m512 a0 = _mm512_maskz_loadu_ps(k.lo, r0 + c), a1 = _mm512_maskz_loadu_ps(k.hi, r0 + c + 16);
    const __m512 b0 = _mm512_maskz_loadu_ps(k.lo, r1 + c), b1 = _mm512_maskz_loadu_ps(k.hi, r1 + c + 16);
    __m512 m = _mm512_set1_ps(-__builtin_inff());
    __m512i t = _mm512_setzero_si512();
    fold_avx512(m, t, _mm512_permutex2var_ps(a0, even, a1), 0);
    fold_avx512(m, t, _mm512_permutex2var_ps(a0, odd, a1), 1);
    fold_avx512(m, t, _mm512_permutex2var_ps(b0, even, b1), 2);
    fold_avx512(m, t, _mm512_permutex2var_ps(b0, odd, b1), 3);
    const __mmask16 pos = _mm512_cmp_ps_mask(m, _mm512_setzero_ps(), _CMP_GT_OQ);
    const __mmask16 keep = pos | _mm512_cmp_ps_mask(m, m, _CMP_UNORD_Q);  // relu: > 0 or NaN stays, else +0
    _mm512_mask_storeu_ps(y + ow0, k.out, _mm512_maskz_mov_ps(keep, m));
    t = _mm512_mask_mov_epi32(_mm512_set1_epi32(kReluPoolNoGrad), pos, t);
    _mm512_mask_cvtepi32_storeu_epi8(taps + ow0, k.out, t);
  }
}

// The gradient of one output row, written as its two whole input rows d0, d1.
LOOM_TARGET_AVX512 void relu_unpool_row_avx512(float* d0, float* d1, const float* g, const uint8_t* taps, int64_t OW) {
  const __m512i lo_half = _mm512_set_epi32(23, 7, 22, 6, 21, 5, 20, 4, 19, 3, 18, 2, 17, 1, 16, 0);
  const __m512i hi_half = _mm512_add_epi32(lo_half, _mm512_set1_epi32(8));
  for (int64_t ow0 = 0; ow0 < OW; ow0 += 16) {
    const RowMasks k = row_masks(std::min<int64_t>(16, OW - ow0));
    const __m512 gv = _mm512_maskz_loadu_ps(k.out, g + ow0);  // lanes past the row hold 0
    // The maskz form: GCC 12 warns about the undefined source of the plain one in portable builds.
    const __m512i t = _mm512_maskz_cvtepu8_epi32(0xFFFF, _mm_maskz_loadu_epi8(k.out, taps + ow0));
    const __m512 e0 = _mm512_maskz_mov_ps(_mm512_cmpeq_epi32_mask(t, _mm512_set1_epi32(0)), gv);
    const __m512 o0 = _mm512_maskz_mov_ps(_mm512_cmpeq_epi32_mask(t, _mm512_set1_epi32(1)), gv);
    const __m512 e1 = _mm512_maskz_mov_ps(_mm512_cmpeq_epi32_mask(t, _mm512_set1_epi32(2)), gv);
    const __m512 o1 = _mm512_maskz_mov_ps(_mm512_cmpeq_epi32_mask(t, _mm512_set1_epi32(3)), gv);
    const int64_t c = 2 * ow0;
    _mm512_mask_storeu_ps(d0 + c, k.lo, _mm512_permutex2var_ps(e0, lo_half, o0));
    _mm512_mask_storeu_ps(d0 + c + 16, k.hi, _mm512_permutex2var_ps(e0, hi_half, o0));
    _mm512_mask_storeu_ps(d1 + c, k.lo, _mm512_permutex2var_ps(e1, lo_half, o1));
    _mm512_mask_storeu_ps(d1 + c + 16, k.hi, _mm512_permutex2var_ps(e1, hi_half, o1));
  }
}

}  // namespace

bool relu_max_pool2d_2x2(float* y, uint8_t* taps, const float* x, const PoolGeom& g) {
  if (!is_max_pool_2x2(g) || !has_avx512()) return false;
  const int64_t planes = g.N * g.C, HW = g.H * g.W, L = g.OH * g.OW;
#pragma omp parallel for schedule(static) if (planes * HW >= kParallelGrain && planes > 1)
  for (int64_t pl = 0; pl < planes; ++pl) {
    const float* xp = x + pl * HW;
    for (int64_t oh = 0; oh < g.OH; ++oh) {
      const float* r0 = xp + 2 * oh * g.W;
      relu_pool_row_avx512(y + pl * L + oh * g.OW, taps + pl * L + oh * g.OW, r0, r0 + g.W, g.OW);
    }
  }
  return true;
}

bool relu_max_pool2d_2x2_backward(float* dx, const float* gy, const uint8_t* taps, const PoolGeom& g) {
  if (!is_max_pool_2x2(g) || !has_avx512()) return false;
  const int64_t planes = g.N * g.C, HW = g.H * g.W, L = g.OH * g.OW;
#pragma omp parallel for schedule(static) if (planes * HW >= kParallelGrain && planes > 1)
  for (int64_t pl = 0; pl < planes; ++pl) {
    float* dp = dx + pl * HW;
    for (int64_t oh = 0; oh < g.OH; ++oh) {
      float* d0 = dp + 2 * oh * g.W;
      relu_unpool_row_avx512(d0, d0 + g.W, gy + pl * L + oh * g.OW, taps + pl * L + oh * g.OW, g.OW);
      if (g.W > 2 * g.OW) d0[g.W - 1] = d0[2 * g.W - 1] = 0.0f;  // the column no window reads
    }
    std::fill(dp + 2 * g.OH * g.W, dp + HW, 0.0f);  // the row no window reads
  }
  return true;
}

#else

bool relu_max_pool2d_2x2(float*, uint8_t*, const float*, const PoolGeom&) { return false; }
bool relu_max_pool2d_2x2_backward(float*, const float*, const uint8_t*, const PoolGeom&) { return false; }

#endif

}  // namespace loom::cpu
