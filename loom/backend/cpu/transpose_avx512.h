// A 16 x 16 transpose of 32-bit elements in AVX-512 registers, shared by the sgemm's packing (a Linear weight
// into B panels) and the Backend's transposed copy. Bits move unchanged (shuffles only), so any 4-byte type
// passes through as float. Call it only where cpu::has_avx512() (see isa.h).
#pragma once
#include <cstdint>

#include "loom/backend/cpu/isa.h"

#if defined(LOOM_X86_KERNELS)
// GCC 12's AVX-512 headers start unpacks from an "undefined" vector and then warn about it (see qgemm.cpp).
#pragma GCC diagnostic ignored "-Wmaybe-uninitialized"
#pragma GCC diagnostic ignored "-Wuninitialized"
#include <immintrin.h>

namespace loom::cpu {

// A 16 x 16 block transpose, dst[j * ldd + i] = src[i * lds + j]: per group of 4 rows, unpack + shuffle give
// vectors holding one column of those 4 rows in each 128-bit lane; then a 4 x 4 exchange of 128-bit lanes
// between the groups assembles whole columns.
LOOM_TARGET_AVX512 static inline void transpose16_avx512(const float* src, int64_t lds, float* dst, int64_t ldd) {
  __m512 u[4][4];  // u[g][c], lane l: column 4l + c of rows 4g .. 4g + 3
  for (int g = 0; g < 4; ++g) {
    const float* s = src + 4 * g * lds;
    const __m512 r0 = _mm512_loadu_ps(s), r1 = _mm512_loadu_ps(s + lds), r2 = _mm512_loadu_ps(s + 2 * lds),
                 r3 = _mm512_loadu_ps(s + 3 * lds);
    const __m512 t0 = _mm512_unpacklo_ps(r0, r1), t1 = _mm512_unpackhi_ps(r0, r1);
    const __m512 t2 = _mm512_unpacklo_ps(r2, r3), t3 = _mm512_unpackhi_ps(r2, r3);
    u[g][0] = _mm512_shuffle_ps(t0, t2, 0x44);
    u[g][1] = _mm512_shuffle_ps(t0, t2, 0xEE);
    u[g][2] = _mm512_shuffle_ps(t1, t3, 0x44);
    u[g][3] = _mm512_shuffle_ps(t1, t3, 0xEE);
  }
  for (int c = 0; c < 4; ++c) {
    const __m512 v0 = _mm512_shuffle_f32x4(u[0][c], u[1][c], 0x44), v1 = _mm512_shuffle_f32x4(u[0][c], u[1][c], 0xEE);
    const __m512 v2 = _mm512_shuffle_f32x4(u[2][c], u[3][c], 0x44), v3 = _mm512_shuffle_f32x4(u[2][c], u[3][c], 0xEE);
    _mm512_storeu_ps(dst + (0 + c) * ldd, _mm512_shuffle_f32x4(v0, v2, 0x88));
    _mm512_storeu_ps(dst + (4 + c) * ldd, _mm512_shuffle_f32x4(v0, v2, 0xDD));
    _mm512_storeu_ps(dst + (8 + c) * ldd, _mm512_shuffle_f32x4(v1, v3, 0x88));
    _mm512_storeu_ps(dst + (12 + c) * ldd, _mm512_shuffle_f32x4(v1, v3, 0xDD));
  }
}

}  // namespace loom::cpu

#endif
