// The AVX-512 VNNI tile kernel behind quant::qgemm. Why it beats one block pair at a time (the first kernel):
// - Two 32-value blocks per 512-bit vpdpbusd instead of one per 256-bit one.
// - No sign trick per pair. vpdpbusd multiplies unsigned by signed bytes, so the weights are made unsigned once
//   per tile (Q8_0: q + 128, one xor; Q4_0: the nibbles as stored, q + 8) and the offset comes back through the
//   accumulator's start value: -offset * (sum of each lane's four activation bytes), computed once per
//   activation block when the activations are laid out (ActRows), not once per weight row.
// - Scales as vectors: the activation scales are floats (converted once), a pair's two block scales are one
//   16-lane vector product; the old kernel converted halves and broadcast a scalar per block pair.
// - RW weight rows x RX activation rows per tile (4 x 4 for prefill): each weight block is unpacked once for RX
//   rows, each activation block loaded once for RW rows.
// The integer block sums are exact, so only the float accumulation order differs from the reference loops.
#include "loom/backend/cpu/qgemm_tiles.h"

#pragma GCC diagnostic ignored "-Wmaybe-uninitialized"  // GCC 12's AVX-512 headers (see qgemm.cpp)
#pragma GCC diagnostic ignored "-Wuninitialized"
#include <immintrin.h>
#include <omp.h>

#include <algorithm>
#include <cstring>

#include "loom/backend/cpu/isa.h"

namespace loom::quant {

#if defined(LOOM_X86_KERNELS)

namespace {

// Activation bytes and lane sums of block pair b/2 of a row: 64 bytes and 16 int32 lanes.
LOOM_TARGET_AVX512_VNNI inline const int8_t* act_qs_vnni(const ActRows& a, int64_t m, int64_t b) {
  return a.qs.data() + (m * a.nb2 + b) * QK;
}
LOOM_TARGET_AVX512_VNNI inline const int32_t* act_corr_vnni(const ActRows& a, int64_t m, int64_t b) {
  return a.corr.data() + (m * a.nb2 + b) * (QK / 4);
}

// Lanes 0-7 take element 0 of a 2-float vector, lanes 8-15 element 1: one block scale per 256-bit half.
LOOM_TARGET_AVX512_VNNI inline __m512 spread2_vnni(__m128 two) {
  return _mm512_permutexvar_ps(_mm512_set_epi32(1, 1, 1, 1, 1, 1, 1, 1, 0, 0, 0, 0, 0, 0, 0, 0),
                               _mm512_castps128_ps512(two));
}

// A weight row's blocks b and b + 1 (only b when `one`) as unsigned bytes, and their two scales.
template <bool Q4>
LOOM_TARGET_AVX512_VNNI inline __m512i weight_pair_vnni(const uint8_t* row, int64_t b, bool one) {
  if constexpr (!Q4) {
    const uint8_t* p = row + b * sizeof(BlockQ8_0) + 2;
    const __m256i lo = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(p));
    const auto* next = reinterpret_cast<const __m256i*>(p + sizeof(BlockQ8_0));
    const __m512i v = one ? _mm512_zextsi256_si512(lo)
                          : _mm512_inserti64x4(_mm512_castsi256_si512(lo), _mm256_loadu_si256(next), 1);
    return _mm512_xor_si512(v, _mm512_set1_epi8(char(0x80)));  // q + 128 (zero padding meets zero activations)
  } else {
    const uint8_t* p = row + b * sizeof(BlockQ4_0) + 2;
    const __m128i b0 = _mm_loadu_si128(reinterpret_cast<const __m128i*>(p));
    const auto* next = reinterpret_cast<const __m128i*>(p + sizeof(BlockQ4_0));
    const __m128i b1 = one ? _mm_setzero_si128() : _mm_loadu_si128(next);
    // 128-bit lanes: [b0, b0, b1, b1]; lanes 1 and 3 shifted down 4 bits, then masked: the low nibbles are
    // elements 0-15 and the high ones 16-31, the activations' order.
    __m512i v = _mm512_mask_broadcast_i32x4(_mm512_broadcast_i32x4(b0), 0xFF00, b1);
    v = _mm512_mask_srli_epi64(v, 0xCC, v, 4);
    return _mm512_and_si512(v, _mm512_set1_epi8(0x0F));
  }
}

template <bool Q4>
LOOM_TARGET_AVX512_VNNI inline __m512 weight_scales_vnni(const uint8_t* row, int64_t b, bool one) {
  constexpr size_t bb = Q4 ? sizeof(BlockQ4_0) : sizeof(BlockQ8_0);
  uint16_t d0, d1 = 0;
  std::memcpy(&d0, row + b * bb, 2);
  if (!one) std::memcpy(&d1, row + (b + 1) * bb, 2);
  return spread2_vnni(_mm_cvtph_ps(_mm_cvtsi32_si128(int(uint32_t(d0) | uint32_t(d1) << 16))));
}

// out[i][j] = dot(weight row i, activation row j) over nb blocks.
template <bool Q4, int RW, int RX>
LOOM_TARGET_AVX512_VNNI inline void tile_vnni(const uint8_t* const* w, const ActRows& a, int64_t m, float* y,
                                               int64_t ldy, const float* bias, const int64_t* n) {
  const int64_t nb = a.nb;
  __m512 acc[RW][RX];
  for (int i = 0; i < RW; ++i)
    for (int j = 0; j < RX; ++j) acc[i][j] = _mm512_setzero_ps();
  for (int64_t b = 0; b < nb; b += 2) {
    const bool one = b + 1 == nb;
    __m512i wv[RW];
    __m512 ws[RW];
    for (int i = 0; i < RW; ++i) {
      wv[i] = weight_pair_vnni<Q4>(w[i], b, one);
      ws[i] = weight_scales_vnni<Q4>(w[i], b, one);
    }
    for (int j = 0; j < RX; ++j) {
      const __m512i xv = _mm512_loadu_si512(act_qs_vnni(a, m + j, b));
      const __m512i cv = _mm512_loadu_si512(act_corr_vnni(a, m + j, b));
      const double* two_scales = reinterpret_cast<const double*>(a.d.data() + (m + j) * a.nb2 + b);
      const __m512 xs = spread2_vnni(_mm_castpd_ps(_mm_load_sd(two_scales)));
      for (int i = 0; i < RW; ++i)
        acc[i][j] = _mm512_fmadd_ps(_mm512_cvtepi32_ps(_mm512_dpbusd_epi32(cv, wv[i], xv)), _mm512_mul_ps(ws[i], xs),
                                    acc[i][j]);
    }
  }
  for (int i = 0; i < RW; ++i) {
    const float bn = bias ? bias[n[i]] : 0.0f;
    for (int j = 0; j < RX; ++j) y[(m + j) * ldy + n[i]] = _mm512_reduce_add_ps(acc[i][j]) + bn;
  }
}

// Every activation row of [m0, m1) against weight rows n[0..RW).
template <bool Q4, int RW>
LOOM_TARGET_AVX512_VNNI inline void rows_vnni(const uint8_t* const* w, const ActRows& a, int64_t m0, int64_t m1,
                                               float* y, int64_t ldy, const float* bias, const int64_t* n) {
  int64_t m = m0;
  for (; m + 4 <= m1; m += 4) tile_vnni<Q4, RW, 4>(w, a, m, y, ldy, bias, n);
  switch (m1 - m) {
    case 3: tile_vnni<Q4, RW, 3>(w, a, m, y, ldy, bias, n); break;
    case 2: tile_vnni<Q4, RW, 2>(w, a, m, y, ldy, bias, n); break;
    case 1: tile_vnni<Q4, RW, 1>(w, a, m, y, ldy, bias, n); break;
    default: break;
  }
}

template <bool Q4>
LOOM_TARGET_AVX512_VNNI void run_vnni(const uint8_t* w, size_t wrow, const ActRows& a, const float* bias, float* y,
                                      int64_t M, int64_t N) {
  constexpr int RW = 4;
  const int64_t tiles = (N + RW - 1) / RW;
  // Small products stay on one thread: waking the pool costs more than the work.
  const bool parallel = double(M) * double(N) * double(a.nb) * QK >= 1 << 16;
  // Activation rows go in chunks that stay in L2 (64 rows of K = 3072 are ~400 KB with their lane sums) while
  // every weight row passes over them once.
  constexpr int64_t MB = 64;
#pragma omp parallel if (parallel)
  for (int64_t m0 = 0; m0 < M; m0 += MB) {
    const int64_t m1 = std::min(M, m0 + MB);
#pragma omp for schedule(static)
    for (int64_t t = 0; t < tiles; ++t) {
      const int64_t n0 = t * RW, nr = std::min<int64_t>(RW, N - n0);
      const uint8_t* wr[RW];
      int64_t n[RW];
      for (int i = 0; i < RW; ++i) {
        n[i] = n0 + std::min<int64_t>(i, nr - 1);
        wr[i] = w + size_t(n[i]) * wrow;
      }
      if (nr == RW) {
        rows_vnni<Q4, RW>(wr, a, m0, m1, y, N, bias, n);
      } else {
        for (int i = 0; i < nr; ++i) rows_vnni<Q4, 1>(wr + i, a, m0, m1, y, N, bias, n + i);
      }
    }
  }
}

// Fills a's buffers (sized by lay_out) from the Q8_0 rows.
LOOM_TARGET_AVX512_VNNI void lay_out_vnni(ActRows& a, const BlockQ8_0* x, int offset) {
  const int64_t M = a.M, nb = a.nb, nb2 = a.nb2;
  const __m256i ones = _mm256_set1_epi8(1);
  const __m256i off = _mm256_set1_epi32(-offset);
  for (int64_t m = 0; m < M; ++m)
    for (int64_t b = 0; b < nb; ++b) {
      const BlockQ8_0& blk = x[m * nb + b];
      const __m256i q = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(blk.qs));
      _mm256_storeu_si256(reinterpret_cast<__m256i*>(a.qs.data() + (m * nb2 + b) * QK), q);
      const __m256i s4 = _mm256_dpbusd_epi32(_mm256_setzero_si256(), ones, q);  // sum of each lane's 4 bytes
      _mm256_storeu_si256(reinterpret_cast<__m256i*>(a.corr.data() + (m * nb2 + b) * (QK / 4)),
                          _mm256_mullo_epi32(s4, off));
      a.d[size_t(m * nb2 + b)] = _cvtsh_ss(blk.d);
    }
}

}  // namespace

bool qgemm_tiles_available() { return cpu::has_avx512_vnni(); }

void ActRows::lay_out(const BlockQ8_0* x, int64_t rows, int64_t nblocks, QuantFormat f) {
  LOOM_CHECK(qgemm_tiles_available(), "quant::ActRows: this CPU has no AVX-512 VNNI (or LOOM_ISA=baseline)");
  M = rows, nb = nblocks, nb2 = nblocks + (nblocks & 1);
  qs.assign(size_t(M * nb2 * QK), 0);
  corr.assign(size_t(M * nb2 * QK / 4), 0);
  d.assign(size_t(M * nb2), 0.0f);
  lay_out_vnni(*this, x, f == QuantFormat::q8_0 ? 128 : 8);
}

void qgemm_tiles(QuantFormat f, const void* w, const ActRows& a, const float* bias, float* y, int64_t M, int64_t N) {
  LOOM_CHECK(qgemm_tiles_available(), "quant::qgemm_tiles: this CPU has no AVX-512 VNNI (or LOOM_ISA=baseline)");
  const auto* wb = static_cast<const uint8_t*>(w);
  const size_t wrow = row_bytes(f, a.nb * QK);
  if (f == QuantFormat::q8_0) run_vnni<false>(wb, wrow, a, bias, y, M, N);
  else run_vnni<true>(wb, wrow, a, bias, y, M, N);
}

#else

bool qgemm_tiles_available() { return false; }
void ActRows::lay_out(const BlockQ8_0*, int64_t, int64_t, QuantFormat) {
  LOOM_FAIL("quant::ActRows: this build has no AVX-512 VNNI tile kernel (not x86-64)");
}
void qgemm_tiles(QuantFormat, const void*, const ActRows&, const float*, float*, int64_t, int64_t) {
  LOOM_FAIL("quant::qgemm_tiles: this build has no AVX-512 VNNI tile kernel");
}

#endif

}  // namespace loom::quant
