// The quantized GEMM entry points and the activation quantizer. On AVX-512 VNNI CPUs qgemm runs the kernels of
// qgemm_tiles.cpp; vec_dot (one row pair) keeps a 256-bit vpdpbusd per block pair here: for Q8_0 x Q8_0 the
// unsigned operand is |w| and the signed one x with w's sign applied (exact because q is in [-127, 127]); for
// Q4_0 the nibbles are already unsigned and the -8 offset is a second vpdpbusd of 8 x x subtracted. The VNNI
// functions carry LOOM_TARGET_AVX512_VNNI and run where cpu::has_avx512_vnni() says so (isa.h); elsewhere the
// reference loops do.
#include "loom/backend/cpu/qgemm.h"
#include "loom/backend/cpu/qgemm_tiles.h"

// GCC 12's AVX-512 headers trip -Wmaybe-uninitialized inside their own inline functions (_mm512_abs_ps,
// the reductions); the warning is about the header, not this file.
#pragma GCC diagnostic ignored "-Wmaybe-uninitialized"
#include <immintrin.h>

#include <cmath>
#include <cstring>

#include "loom/backend/cpu/isa.h"
#include "loom/core/error.h"

namespace loom::quant {

#if defined(LOOM_X86_KERNELS)

LOOM_TARGET_AVX512_VNNI static inline float half_to_float_vnni(uint16_t h) { return _cvtsh_ss(h); }

LOOM_TARGET_AVX512_VNNI static void quantize_blocks_q8_0_vnni(const float* x, BlockQ8_0* y, int64_t nb) {
  const __m512 sign_mask = _mm512_set1_ps(-0.0f), half = _mm512_set1_ps(0.5f), one = _mm512_set1_ps(1.0f);
  for (int64_t b = 0; b < nb; ++b) {
    const float* p = x + b * QK;
    __m512 v0 = _mm512_loadu_ps(p), v1 = _mm512_loadu_ps(p + 16);
    const float amax = _mm512_reduce_max_ps(_mm512_max_ps(_mm512_abs_ps(v0), _mm512_abs_ps(v1)));
    const float d = amax / 127.0f;
    const float id = d != 0.0f ? 1.0f / d : 0.0f;
    y[b].d = uint16_t(_cvtss_sh(d, _MM_FROUND_TO_NEAREST_INT));
    const __m512 vid = _mm512_set1_ps(id);
    __m128i q[2];
    for (int h = 0; h < 2; ++h) {
      __m512 v = _mm512_mul_ps(h ? v1 : v0, vid);
      // roundf (half away from zero): truncate, then step one away from zero when the dropped part >= 0.5.
      __m512 t = _mm512_roundscale_ps(v, _MM_FROUND_TO_ZERO | _MM_FROUND_NO_EXC);
      __mmask16 up = _mm512_cmp_ps_mask(_mm512_abs_ps(_mm512_sub_ps(v, t)), half, _CMP_GE_OQ);
      __m512 step = _mm512_or_ps(one, _mm512_and_ps(v, sign_mask));
      t = _mm512_mask_add_ps(t, up, t, step);
      q[h] = _mm512_cvtsepi32_epi8(_mm512_cvttps_epi32(t));
    }
    _mm_storeu_si128(reinterpret_cast<__m128i*>(y[b].qs), q[0]);
    _mm_storeu_si128(reinterpret_cast<__m128i*>(y[b].qs + 16), q[1]);
  }
}

LOOM_TARGET_AVX512_VNNI static inline float hsum8_vnni(__m256 v) {
  __m128 s = _mm_add_ps(_mm256_castps256_ps128(v), _mm256_extractf128_ps(v, 1));
  s = _mm_add_ps(s, _mm_movehl_ps(s, s));
  s = _mm_add_ss(s, _mm_movehdup_ps(s));
  return _mm_cvtss_f32(s);
}

// R activation rows (R = 1..4) against one weight row: acc[r] += the row pair's dot product.
template <int R>
LOOM_TARGET_AVX512_VNNI static inline void dot_q8_rows_vnni(const BlockQ8_0* w, const BlockQ8_0* const* x, int64_t nb,
                                                            float* out) {
  __m256 acc[R];
  for (int r = 0; r < R; ++r) acc[r] = _mm256_setzero_ps();
  for (int64_t b = 0; b < nb; ++b) {
    const __m256i wq = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(w[b].qs));
    const __m256i aw = _mm256_abs_epi8(wq);
    const float dw = half_to_float_vnni(w[b].d);
    for (int r = 0; r < R; ++r) {
      const __m256i xq = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(x[r][b].qs));
      const __m256i dp = _mm256_dpbusd_epi32(_mm256_setzero_si256(), aw, _mm256_sign_epi8(xq, wq));
      acc[r] = _mm256_fmadd_ps(_mm256_cvtepi32_ps(dp), _mm256_set1_ps(dw * half_to_float_vnni(x[r][b].d)), acc[r]);
    }
  }
  for (int r = 0; r < R; ++r) out[r] = hsum8_vnni(acc[r]);
}

template <int R>
LOOM_TARGET_AVX512_VNNI static inline void dot_q4_rows_vnni(const BlockQ4_0* w, const BlockQ8_0* const* x, int64_t nb,
                                                            float* out) {
  __m256 acc[R];
  for (int r = 0; r < R; ++r) acc[r] = _mm256_setzero_ps();
  const __m256i low = _mm256_set1_epi8(0x0F), eight = _mm256_set1_epi8(8);
  for (int64_t b = 0; b < nb; ++b) {
    const __m128i packed = _mm_loadu_si128(reinterpret_cast<const __m128i*>(w[b].qs));
    // Elements 0..15 are the low nibbles, 16..31 the high ones: x's order.
    const __m256i wq = _mm256_and_si256(
        _mm256_set_m128i(_mm_srli_epi16(packed, 4), packed), low);
    const float dw = half_to_float_vnni(w[b].d);
    for (int r = 0; r < R; ++r) {
      const __m256i xq = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(x[r][b].qs));
      const __m256i dp = _mm256_sub_epi32(_mm256_dpbusd_epi32(_mm256_setzero_si256(), wq, xq),
                                          _mm256_dpbusd_epi32(_mm256_setzero_si256(), eight, xq));
      acc[r] = _mm256_fmadd_ps(_mm256_cvtepi32_ps(dp), _mm256_set1_ps(dw * half_to_float_vnni(x[r][b].d)), acc[r]);
    }
  }
  for (int r = 0; r < R; ++r) out[r] = hsum8_vnni(acc[r]);
}

template <int R>
LOOM_TARGET_AVX512_VNNI static inline void dot_rows_vnni(QuantFormat f, const void* w, const BlockQ8_0* const* x,
                                                         int64_t nb, float* out) {
  if (f == QuantFormat::q8_0) dot_q8_rows_vnni<R>(static_cast<const BlockQ8_0*>(w), x, nb, out);
  else dot_q4_rows_vnni<R>(static_cast<const BlockQ4_0*>(w), x, nb, out);
}

LOOM_TARGET_AVX512_VNNI static float vec_dot_vnni(QuantFormat f, const void* w, const BlockQ8_0* x, int64_t K) {
  float out;
  dot_rows_vnni<1>(f, w, &x, K / QK, &out);
  return out;
}

#endif  // LOOM_X86_KERNELS

void quantize_rows_q8_0(const float* x, BlockQ8_0* y, int64_t M, int64_t K) {
  LOOM_CHECK(K % QK == 0, "quantize_rows_q8_0: K = ", K, " is not a multiple of ", QK);
  const int64_t nb = M * K / QK;
#if defined(LOOM_X86_KERNELS)
  if (cpu::has_avx512_vnni()) return quantize_blocks_q8_0_vnni(x, y, nb);
#endif
  quantize_row_q8_0(x, y, nb * QK);
}

float vec_dot(QuantFormat f, const void* w, const BlockQ8_0* x, int64_t K) {
  LOOM_CHECK(K % QK == 0, "quant::vec_dot: K = ", K, " is not a multiple of ", QK);
#if defined(LOOM_X86_KERNELS)
  if (cpu::has_avx512_vnni()) return vec_dot_vnni(f, w, x, K);
#endif
  return f == QuantFormat::q8_0 ? vec_dot_q8_0_q8_0_ref(static_cast<const BlockQ8_0*>(w), x, K)
                                : vec_dot_q4_0_q8_0_ref(static_cast<const BlockQ4_0*>(w), x, K);
}

void qgemm(QuantFormat f, const void* w, const BlockQ8_0* x, const float* bias, float* y, int64_t M, int64_t N,
           int64_t K) {
  LOOM_CHECK(K % QK == 0 && M >= 0 && N >= 0, "quant::qgemm: K = ", K, " must be a multiple of ", QK);
#if defined(LOOM_X86_KERNELS)
  if (cpu::has_avx512_vnni()) {
    // qgemm_tiles.h: 16 weight rows per register for prefill (4 rows or more), one streamed weight row at a
    // time with two blocks per 512-bit product for decode.
    thread_local ActRows rows;  // reused: a prompt's products all have the same activation shape
    rows.lay_out(x, M, K / QK, f);
    return qgemm_tiles(f, w, rows, bias, y, M, N);
  }
#endif
  qgemm_ref(f, w, x, bias, y, M, N, K);
}

void qgemm_ref(QuantFormat f, const void* w, const BlockQ8_0* x, const float* bias, float* y, int64_t M, int64_t N,
               int64_t K) {
  const int64_t nb = K / QK;
  const size_t wrow = row_bytes(f, K);
  const auto* wb = static_cast<const uint8_t*>(w);
  for (int64_t m = 0; m < M; ++m)  // (M, K) x (N, K)^T -> (M, N)
    for (int64_t n = 0; n < N; ++n) {
      const void* wr = wb + size_t(n) * wrow;
      const float d = f == QuantFormat::q8_0 ? vec_dot_q8_0_q8_0_ref(static_cast<const BlockQ8_0*>(wr), x + m * nb, K)
                                             : vec_dot_q4_0_q8_0_ref(static_cast<const BlockQ4_0*>(wr), x + m * nb, K);
      y[m * N + n] = d + (bias ? bias[n] : 0.0f);
    }
}

}  // namespace loom::quant
