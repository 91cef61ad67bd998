// 2x2 / stride 2 max pooling in AVX-512: per output row, 32 input columns of the two input rows are
// loaded (masked at the row's end) and split into even and odd columns with one permute each, giving the
// four taps of 16 windows. Taps are folded in PyTorch's row-major order with its rule (a larger value or
// a NaN replaces the current one, starting from -inf at the first tap's index), as pool.cpp's scalar loop
// does, so outputs and indices are identical to it.
#include "loom/backend/cpu/max_pool_2x2.h"

#include <algorithm>

#include "loom/backend/cpu/isa.h"
#if defined(LOOM_X86_KERNELS)
#include <immintrin.h>
#endif

#include "loom/backend/cpu/loop.h"

namespace loom::cpu {

bool is_max_pool_2x2(const PoolGeom& g) {
  return g.KH == 2 && g.KW == 2 && g.sh == 2 && g.sw == 2 && g.ph == 0 && g.pw == 0 && g.dh == 1 && g.dw == 1 &&
         2 * g.OH <= g.H && 2 * g.OW <= g.W && g.H * g.W < (int64_t(1) << 31);  // int32 index lanes
}

#if defined(LOOM_X86_KERNELS)
namespace {

// Folds one tap (values v at plane offsets at) into the running max m and its index i.
LOOM_TARGET_AVX512 inline void fold_avx512(__m512& m, __m512i& i, __m512 v, __m512i at) {
  const __mmask16 take = _mm512_cmp_ps_mask(v, m, _CMP_GT_OQ) | _mm512_cmp_ps_mask(v, v, _CMP_UNORD_Q);
  m = _mm512_mask_mov_ps(m, take, v);
  i = _mm512_mask_mov_epi32(i, take, at);
}

// One output row: r0, r1 are the window's two input rows, ow0.. the outputs, W the input row stride.
LOOM_TARGET_AVX512 void pool_row_avx512(float* y, int64_t* idx, const float* r0, const float* r1, int64_t row_off,
                                        int64_t OW, int64_t W) {
  const __m512i even = _mm512_set_epi32(30, 28, 26, 24, 22, 20, 18, 16, 14, 12, 10, 8, 6, 4, 2, 0);
  const __m512i odd = _mm512_add_epi32(even, _mm512_set1_epi32(1));
  const __m512i lane2 = _mm512_slli_epi32(_mm512_set_epi32(15, 14, 13, 12, 11, 10, 9, 8, 7, 6, 5, 4, 3, 2, 1, 0), 1);
  const __m512i one = _mm512_set1_epi32(1), down = _mm512_set1_epi32(int32_t(W));
  for (int64_t ow0 = 0; ow0 < OW; ow0 += 16) {
    const int64_t n = OW - ow0 < 16 ? OW - ow0 : 16, cols = 2 * n;  // outputs, input columns
    const __mmask16 lo = __mmask16(cols >= 16 ? 0xFFFF : (1u << cols) - 1);
    const __mmask16 hi = __mmask16(cols <= 16 ? 0 : (1u << (cols - 16)) - 1);
    const __mmask16 out = __mmask16((1u << n) - 1);
    const int64_t c = 2 * ow0;
    const __m512 a0 = _mm512_maskz_loadu_ps(lo, r0 + c), a1 = _mm512_maskz_loadu_ps(hi, r0 + c + 16);
    const __m512 b0 = _mm512_maskz_loadu_ps(lo, r1 + c), b1 = _mm512_maskz_loadu_ps(hi, r1 + c + 16);
    const __m512i at = _mm512_add_epi32(_mm512_set1_epi32(int32_t(row_off + c)), lane2);  // tap (0, 0)
    __m512 m = _mm512_set1_ps(-__builtin_inff());
    __m512i i = at;
    fold_avx512(m, i, _mm512_permutex2var_ps(a0, even, a1), at);
    fold_avx512(m, i, _mm512_permutex2var_ps(a0, odd, a1), _mm512_add_epi32(at, one));
    const __m512i at1 = _mm512_add_epi32(at, down);
    fold_avx512(m, i, _mm512_permutex2var_ps(b0, even, b1), at1);
    fold_avx512(m, i, _mm512_permutex2var_ps(b0, odd, b1), _mm512_add_epi32(at1, one));
    _mm512_mask_storeu_ps(y + ow0, out, m);
    // Widen to int64 (the maskz forms: GCC 12 warns about the undefined upper half of the plain ones).
    const __m256i i_lo = _mm512_maskz_extracti64x4_epi64(0xF, i, 0), i_hi = _mm512_maskz_extracti64x4_epi64(0xF, i, 1);
    _mm512_mask_storeu_epi64(idx + ow0, __mmask8(out), _mm512_maskz_cvtepi32_epi64(0xFF, i_lo));
    _mm512_mask_storeu_epi64(idx + ow0 + 8, __mmask8(out >> 8), _mm512_maskz_cvtepi32_epi64(0xFF, i_hi));
  }
}

// The gradient of one output row: g[ow] goes to the tap its index names, the other three taps get 0,
// written as two whole input rows (even/odd columns interleaved back with one permute each). Returns
// false if an index is not one of its window's taps (only this file's forward writes them, so that
// would be a bug; the caller then takes the general scatter).
LOOM_TARGET_AVX512 bool unpool_row_avx512(float* d0, float* d1, const float* g, const int64_t* idx, int64_t row_off,
                                          int64_t OW, int64_t W) {
  const __m512i lane2 = _mm512_slli_epi32(_mm512_set_epi32(15, 14, 13, 12, 11, 10, 9, 8, 7, 6, 5, 4, 3, 2, 1, 0), 1);
  const __m512i lo_half = _mm512_set_epi32(23, 7, 22, 6, 21, 5, 20, 4, 19, 3, 18, 2, 17, 1, 16, 0);
  const __m512i hi_half = _mm512_add_epi32(lo_half, _mm512_set1_epi32(8));
  const __m512i one = _mm512_set1_epi32(1), down = _mm512_set1_epi32(int32_t(W));
  for (int64_t ow0 = 0; ow0 < OW; ow0 += 16) {
    const int64_t n = OW - ow0 < 16 ? OW - ow0 : 16, cols = 2 * n;
    const __mmask16 out = __mmask16((1u << n) - 1);
    const __mmask16 lo = __mmask16(cols >= 16 ? 0xFFFF : (1u << cols) - 1);
    const __mmask16 hi = __mmask16(cols <= 16 ? 0 : (1u << (cols - 16)) - 1);
    const __m512 gv = _mm512_maskz_loadu_ps(out, g + ow0);
    const __m256i i_lo = _mm512_maskz_cvtepi64_epi32(0xFF, _mm512_maskz_loadu_epi64(__mmask8(out), idx + ow0));
    const __m256i i_hi = _mm512_maskz_cvtepi64_epi32(0xFF, _mm512_maskz_loadu_epi64(__mmask8(out >> 8), idx + ow0 + 8));
    const __m512i at = _mm512_maskz_inserti64x4(0xFF, _mm512_maskz_inserti64x4(0xFF, _mm512_setzero_si512(), i_lo, 0), i_hi, 1);
    const __m512i rel = _mm512_sub_epi32(at, _mm512_add_epi32(_mm512_set1_epi32(int32_t(row_off + 2 * ow0)), lane2));
    const __mmask16 t00 = _mm512_cmpeq_epi32_mask(rel, _mm512_setzero_si512()), t01 = _mm512_cmpeq_epi32_mask(rel, one);
    const __mmask16 t10 = _mm512_cmpeq_epi32_mask(rel, down);
    const __mmask16 t11 = _mm512_cmpeq_epi32_mask(rel, _mm512_add_epi32(down, one));
    if (__mmask16(t00 | t01 | t10 | t11) != out) return false;
    const __m512 e0 = _mm512_maskz_mov_ps(t00, gv), o0 = _mm512_maskz_mov_ps(t01, gv);
    const __m512 e1 = _mm512_maskz_mov_ps(t10, gv), o1 = _mm512_maskz_mov_ps(t11, gv);
    _mm512_mask_storeu_ps(d0 + 2 * ow0, lo, _mm512_permutex2var_ps(e0, lo_half, o0));
    _mm512_mask_storeu_ps(d0 + 2 * ow0 + 16, hi, _mm512_permutex2var_ps(e0, hi_half, o0));
    _mm512_mask_storeu_ps(d1 + 2 * ow0, lo, _mm512_permutex2var_ps(e1, lo_half, o1));
    _mm512_mask_storeu_ps(d1 + 2 * ow0 + 16, hi, _mm512_permutex2var_ps(e1, hi_half, o1));
  }
  return true;
}

}  // namespace

bool max_pool2d_2x2_backward(float* dx, const float* gy, const int64_t* idx, const PoolGeom& g) {
  if (!is_max_pool_2x2(g) || !has_avx512()) return false;
  const int64_t planes = g.N * g.C, HW = g.H * g.W, L = g.OH * g.OW;
#pragma omp parallel for schedule(static) if (planes * HW >= kParallelGrain && planes > 1)
  for (int64_t pl = 0; pl < planes; ++pl) {
    float* dp = dx + pl * HW;
    const float* gp = gy + pl * L;
    const int64_t* ip = idx + pl * L;
    bool fast = true;
    for (int64_t oh = 0; oh < g.OH && fast; ++oh) {
      const int64_t row = 2 * oh * g.W;
      fast = unpool_row_avx512(dp + row, dp + row + g.W, gp + oh * g.OW, ip + oh * g.OW, row, g.OW, g.W);
      if (g.W > 2 * g.OW) dp[row + g.W - 1] = dp[row + 2 * g.W - 1] = 0.0f;  // the column no window reads
    }
    if (!fast) {  // not this kernel's indices: the general rule, as pool.cpp applies it
      std::fill(dp, dp + HW, 0.0f);
      for (int64_t l = 0; l < L; ++l)
        if (ip[l] >= 0 && ip[l] < HW) dp[ip[l]] += gp[l];
    }
    std::fill(dp + 2 * g.OH * g.W, dp + HW, 0.0f);  // the row no window reads
  }
  return true;
}

bool max_pool2d_2x2(float* y, int64_t* idx, const float* x, const PoolGeom& g) {
  if (!is_max_pool_2x2(g) || !has_avx512()) return false;
  const int64_t planes = g.N * g.C, HW = g.H * g.W, L = g.OH * g.OW;
#pragma omp parallel for schedule(static) if (planes * HW >= kParallelGrain && planes > 1)
  for (int64_t pl = 0; pl < planes; ++pl) {
    const float* xp = x + pl * HW;
    for (int64_t oh = 0; oh < g.OH; ++oh) {
      const int64_t row = 2 * oh * g.W;
      pool_row_avx512(y + pl * L + oh * g.OW, idx + pl * L + oh * g.OW, xp + row, xp + row + g.W, row, g.OW, g.W);
    }
  }
  return true;
}

#else

bool max_pool2d_2x2(float*, int64_t*, const float*, const PoolGeom&) { return false; }
bool max_pool2d_2x2_backward(float*, const float*, const int64_t*, const PoolGeom&) { return false; }

#endif

}  // namespace loom::cpu
