// The AVX-512 VNNI prefill kernel behind quant::qgemm (4 activation rows or more).
// - Weights unsigned: vpdpbusd multiplies unsigned by signed bytes, so the weight bytes are shifted once when
//   they are laid out (Q8_0: q + 128, one xor; Q4_0: the nibbles as stored, q + 8) and the shift comes back
//   through the int32 accumulator's start value, -offset * (sum of the activation block's 32 quants), computed
//   once per activation block (ActRows) instead of once per weight row.
// - 16 weight rows per register: a 512-bit register holds 4 consecutive bytes of 16 weight rows, so 8 vpdpbusd
//   (each against 4 activation bytes broadcast to every lane) sum a whole block for 16 rows in int32 lanes,
//   and the block scales cost one conversion, one scale product and one FMA per 512 products. (The first
//   tile kernel held two blocks of one row per register and paid those three per 64 products; this one ran
//   1.6-1.8x its speed on a GPT-2 prompt, docs/compression.md.)
// - Laid out just in time: each 16-row group is gathered into that layout in a per-thread buffer (nb * 512
//   bytes) once per product and used by every activation row, so the file's layout stays ggml's and nothing
//   is stored twice; the gathers cost about one activation row's work.
// The integer block sums are exact, so only the float accumulation order differs from the reference loops.
#include "loom/backend/cpu/qgemm_tiles.h"

#pragma GCC diagnostic ignored "-Wmaybe-uninitialized"  // GCC 12's AVX-512 headers (see qgemm.cpp)
#pragma GCC diagnostic ignored "-Wuninitialized"
#include <immintrin.h>
#include <omp.h>

#include <algorithm>
#include <cstdlib>
#include <cstring>
#include <new>
#include <vector>

#include "loom/backend/cpu/isa.h"

namespace loom::quant {

#if defined(LOOM_X86_KERNELS)

namespace {

// 64-byte aligned std::vector storage (the interleaved weights are read with aligned 512-bit loads).
template <class T>
struct Aligned64 {
  using value_type = T;
  Aligned64() = default;
  template <class U>
  Aligned64(const Aligned64<U>&) {}
  T* allocate(size_t n) {
    void* p = std::aligned_alloc(64, (n * sizeof(T) + 63) / 64 * 64);
    if (!p) throw std::bad_alloc();
    return static_cast<T*>(p);
  }
  void deallocate(T* p, size_t) { std::free(p); }
  bool operator==(const Aligned64&) const { return true; }
};
using AlignedBytes = Aligned64<uint8_t>;
using AlignedFloats = Aligned64<float>;

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


// ---- Decode (1-3 activation rows): one weight row at a time, streamed from memory once, two blocks per 512-bit
// vpdpbusd with the unsigned shift undone through the lane start values (corr), scales as one vector product.
template <bool Q4, int RX>
LOOM_TARGET_AVX512_VNNI void run_rows_vnni(const uint8_t* w, size_t wrow, const ActRows& a, const float* bias, float* y,
                                           int64_t N) {
  const bool parallel = double(RX) * double(N) * double(a.nb) * QK >= 1 << 16;
#pragma omp parallel for schedule(static) if (parallel)
  for (int64_t n = 0; n < N; ++n) {
    const uint8_t* wr = w + size_t(n) * wrow;
    tile_vnni<Q4, 1, RX>(&wr, a, 0, y, N, bias, &n);
  }
}

template <bool Q4>
LOOM_TARGET_AVX512_VNNI void decode_vnni(const uint8_t* w, size_t wrow, const ActRows& a, const float* bias, float* y,
                                         int64_t M, int64_t N) {
  if (M == 1) run_rows_vnni<Q4, 1>(w, wrow, a, bias, y, N);
  else if (M == 2) run_rows_vnni<Q4, 2>(w, wrow, a, bias, y, N);
  else run_rows_vnni<Q4, 3>(w, wrow, a, bias, y, N);
}

constexpr int64_t kGroup = 16;  // weight rows per register

// Weight rows n0 .. n0 + 16 (rows >= N as zeros) of a Q8_0 / Q4_0 matrix as unsigned bytes, per block b and
// 4-byte step g the 16 rows' 4 bytes (64 bytes at wp + (b * 8 + g) * 64), and the 16 block scales as floats at
// ws + b * 16.
template <bool Q4>
LOOM_TARGET_AVX512_VNNI void interleave_rows_vnni(const uint8_t* w, size_t wrow, int64_t n0, int64_t N, int64_t nb,
                                                  uint8_t* wp, float* ws) {
  const int64_t rows = std::min<int64_t>(kGroup, N - n0);
  const __mmask16 live = __mmask16(rows >= 16 ? 0xFFFF : (1u << rows) - 1u);
  const __m512i row_off = _mm512_mullo_epi32(_mm512_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15),
                                             _mm512_set1_epi32(int(wrow)));
  const uint8_t* base = w + size_t(n0) * wrow;
  constexpr int64_t bb = Q4 ? int64_t(sizeof(BlockQ4_0)) : int64_t(sizeof(BlockQ8_0));
  const __m512i low = _mm512_set1_epi8(0x0F);
  for (int64_t b = 0; b < nb; ++b) {
    const uint8_t* blk = base + b * bb;
    const __m512i d = _mm512_mask_i32gather_epi32(_mm512_setzero_si512(), live, row_off, blk, 1);
    _mm512_store_ps(ws + b * kGroup, _mm512_cvtph_ps(_mm512_cvtepi32_epi16(d)));
    uint8_t* dst = wp + b * 8 * 64;
    if constexpr (Q4) {
      // Bytes 4g .. 4g + 3 of the 16 packed: low nibbles are elements 4g .. 4g + 3, high ones 16 + 4g ...
      for (int g = 0; g < 4; ++g) {
        const __m512i v = _mm512_mask_i32gather_epi32(_mm512_setzero_si512(), live, row_off, blk + 2 + 4 * g, 1);
        _mm512_store_si512(dst + g * 64, _mm512_and_si512(v, low));
        _mm512_store_si512(dst + (g + 4) * 64, _mm512_and_si512(_mm512_srli_epi16(v, 4), low));
      }
    } else {
      for (int g = 0; g < 8; ++g) {
        const __m512i v = _mm512_mask_i32gather_epi32(_mm512_setzero_si512(), live, row_off, blk + 2 + 4 * g, 1);
        _mm512_store_si512(dst + g * 64, _mm512_xor_si512(v, _mm512_set1_epi8(char(0x80))));  // q + 128
      }
    }
  }
}

// Activation rows m .. m + RX against the 16 interleaved weight rows: y[m + j, n0 .. n0 + cols) (+ bias).
template <int RX>
LOOM_TARGET_AVX512_VNNI void interleaved_rows_vnni(const uint8_t* wp, const float* ws, const ActRows& a, int64_t m,
                                                   float* y, int64_t ldy, const float* bias, int64_t n0, int64_t cols) {
  const int64_t nb = a.nb, nb2 = a.nb2;
  __m512 acc[RX];
  for (int j = 0; j < RX; ++j) acc[j] = _mm512_setzero_ps();
  for (int64_t b = 0; b < nb; ++b) {
    __m512i dot[RX];
    const int8_t* xq[RX];
    for (int j = 0; j < RX; ++j) {
      dot[j] = _mm512_set1_epi32(a.bsum[size_t((m + j) * nb2 + b)]);  // -offset * sum(x): the unsigned shift undone
      xq[j] = act_qs_vnni(a, m + j, b);
    }
    const uint8_t* wb = wp + b * 8 * 64;
#pragma GCC unroll 8
    for (int g = 0; g < 8; ++g) {
      const __m512i wv = _mm512_load_si512(wb + g * 64);
      for (int j = 0; j < RX; ++j) {
        int32_t x4;
        std::memcpy(&x4, xq[j] + 4 * g, 4);
        dot[j] = _mm512_dpbusd_epi32(dot[j], wv, _mm512_set1_epi32(x4));
      }
    }
    const __m512 wsv = _mm512_load_ps(ws + b * kGroup);
    for (int j = 0; j < RX; ++j)
      acc[j] = _mm512_fmadd_ps(_mm512_cvtepi32_ps(dot[j]), _mm512_mul_ps(wsv, _mm512_set1_ps(a.d[size_t((m + j) * nb2 + b)])),
                               acc[j]);
  }
  const __mmask16 mask = __mmask16(cols >= 16 ? 0xFFFF : (1u << cols) - 1u);
  const __m512 bv = bias ? _mm512_maskz_loadu_ps(mask, bias + n0) : _mm512_setzero_ps();
  for (int j = 0; j < RX; ++j) _mm512_mask_storeu_ps(y + (m + j) * ldy + n0, mask, _mm512_add_ps(acc[j], bv));
}

template <bool Q4>
LOOM_TARGET_AVX512_VNNI void run_interleaved_vnni(const uint8_t* w, size_t wrow, const ActRows& a, const float* bias,
                                                  float* y, int64_t M, int64_t N) {
  const int64_t groups = (N + kGroup - 1) / kGroup, nb = a.nb;
  const bool parallel = double(M) * double(N) * double(nb) * QK >= 1 << 16;
#pragma omp parallel if (parallel)
  {
    // Per thread: the interleaved rows of one group (nb * 512 bytes: 48 KB for K = 3072) and their scales.
    thread_local std::vector<uint8_t, AlignedBytes> wp;
    thread_local std::vector<float, AlignedFloats> ws;
    wp.resize(size_t(nb * 8 * 64));
    ws.resize(size_t(nb * kGroup));
#pragma omp for schedule(static)
    for (int64_t gi = 0; gi < groups; ++gi) {
      const int64_t n0 = gi * kGroup, cols = std::min<int64_t>(kGroup, N - n0);
      interleave_rows_vnni<Q4>(w, wrow, n0, N, nb, wp.data(), ws.data());
      int64_t m = 0;
      for (; m + 8 <= M; m += 8) interleaved_rows_vnni<8>(wp.data(), ws.data(), a, m, y, N, bias, n0, cols);
      switch (M - m) {
        case 7: interleaved_rows_vnni<7>(wp.data(), ws.data(), a, m, y, N, bias, n0, cols); break;
        case 6: interleaved_rows_vnni<6>(wp.data(), ws.data(), a, m, y, N, bias, n0, cols); break;
        case 5: interleaved_rows_vnni<5>(wp.data(), ws.data(), a, m, y, N, bias, n0, cols); break;
        case 4: interleaved_rows_vnni<4>(wp.data(), ws.data(), a, m, y, N, bias, n0, cols); break;
        case 3: interleaved_rows_vnni<3>(wp.data(), ws.data(), a, m, y, N, bias, n0, cols); break;
        case 2: interleaved_rows_vnni<2>(wp.data(), ws.data(), a, m, y, N, bias, n0, cols); break;
        case 1: interleaved_rows_vnni<1>(wp.data(), ws.data(), a, m, y, N, bias, n0, cols); break;
        default: break;
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
      const __m256i c8 = _mm256_mullo_epi32(s4, off);
      _mm256_storeu_si256(reinterpret_cast<__m256i*>(a.corr.data() + (m * nb2 + b) * (QK / 4)), c8);
      const __m128i c4 = _mm_add_epi32(_mm256_castsi256_si128(c8), _mm256_extracti128_si256(c8, 1));
      const __m128i c2 = _mm_add_epi32(c4, _mm_unpackhi_epi64(c4, c4));
      a.bsum[size_t(m * nb2 + b)] = _mm_cvtsi128_si32(_mm_add_epi32(c2, _mm_shuffle_epi32(c2, 1)));
      a.d[size_t(m * nb2 + b)] = _cvtsh_ss(blk.d);
    }
}

}  // namespace

bool qgemm_tiles_available() { return cpu::has_avx512_vnni(); }

void ActRows::lay_out(const BlockQ8_0* x, int64_t rows, int64_t nblocks, QuantFormat f) {
  LOOM_CHECK(qgemm_tiles_available(), "quant::ActRows: this CPU has no AVX-512 VNNI (or LOOM_ISA=baseline)");
  M = rows, nb = nblocks, nb2 = nblocks + (nblocks & 1);
  qs.assign(size_t(M * nb2 * QK), 0);
  d.assign(size_t(M * nb2), 0.0f);
  bsum.assign(size_t(M * nb2), 0);
  corr.assign(size_t(M * nb2 * QK / 4), 0);
  lay_out_vnni(*this, x, f == QuantFormat::q8_0 ? 128 : 8);
}

void qgemm_tiles(QuantFormat f, const void* w, const ActRows& a, const float* bias, float* y, int64_t M, int64_t N) {
  LOOM_CHECK(qgemm_tiles_available(), "quant::qgemm_tiles: this CPU has no AVX-512 VNNI (or LOOM_ISA=baseline)");
  const auto* wb = static_cast<const uint8_t*>(w);
  const size_t wrow = row_bytes(f, a.nb * QK);
  if (M < 4) {
    if (f == QuantFormat::q8_0) decode_vnni<false>(wb, wrow, a, bias, y, M, N);
    else decode_vnni<true>(wb, wrow, a, bias, y, M, N);
    return;
  }
  if (f == QuantFormat::q8_0) run_interleaved_vnni<false>(wb, wrow, a, bias, y, M, N);
  else run_interleaved_vnni<true>(wb, wrow, a, bias, y, M, N);
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
