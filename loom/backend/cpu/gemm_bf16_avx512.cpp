// AVX512-BF16 GEMM (see gemm_bf16_avx512.h). VDPBF16PS wants both factors of each product pair adjacent:
// a 32-bit (k, k+1) pair of A broadcast to all lanes, times a vector of 16 columns' (k, k+1) pairs of B.
//
// Packing (all vectorised: VCVTNE2PS2BF16 rounds 32 floats, one permute interleaves two rows into pairs):
// - B is packed in 16-column strips of (k, k+1) pairs, from two rows of B when B is K x N (no transposes), or
//   through 16 x 16 transposes of 32-bit pairs when B^T is given (N x K: a weight in x W^T, small).
// - A (M x K, row-major) keeps its layout: a row's (k, k+1) pair is already adjacent. A^T (K x M, as in a
//   weight gradient dY^T X) is packed like B, in 16-row strips of pairs, so no product transposes anything.
// Each packed operand is written whole, padding included, into per-thread buffers reused across calls
// (a training step repeats its shapes), and packing and products share one parallel region.
//
// Products: C in 32 x 32 blocks, each four 8-row strips; a strip keeps 8 x 32 f32 accumulators in 16 ZMM
// registers and is stored straight from them (masked at the edges). K runs in chunks of <= 1024 so a
// block's B (32 columns x chunk, 64 KB) stays in L2 while the strips pass over it; later chunks add onto C.
#include "loom/backend/cpu/gemm_bf16_avx512.h"

#include <algorithm>
#include <cstring>
#include <vector>

#include "loom/backend/cpu/isa.h"
#include "loom/backend/cpu/loop.h"

#if defined(LOOM_X86_KERNELS)
#include <immintrin.h>
#endif

#include "loom/core/error.h"

namespace loom::cpu {

#if defined(LOOM_X86_KERNELS)
namespace {

inline int64_t round_up(int64_t v, int64_t m) { return (v + m - 1) / m * m; }

// Where packed operands live. A rows: `rs` elements from one row to the next, `ks` from one (k, k+1) pair to
// the next (row-major A: rs = row length, ks = 2; strips: rs = 2, ks = 32).
struct PackedA {
  const uint16_t* p;
  int64_t rs, ks;
};

// 16 floats of row r0 and 16 of row r1 (either may be null: zeros), masked to n columns, as 16 bf16 pairs
// (r0[j], r1[j]) in the 32-bit lanes of the result.
LOOM_TARGET_AVX512_BF16 inline __m512i avx512bf16_pairs(const float* r0, const float* r1, __mmask16 m) {
  const __m512 lo = r0 ? _mm512_maskz_loadu_ps(m, r0) : _mm512_setzero_ps();
  const __m512 hi = r1 ? _mm512_maskz_loadu_ps(m, r1) : _mm512_setzero_ps();
  // cvtne2ps puts hi's 16 bf16 in the upper half; the permute interleaves lo[j], hi[j].
  const __m512i v = (__m512i)_mm512_cvtne2ps_pbh(hi, lo);
  const __m512i idx = _mm512_set_epi16(31, 15, 30, 14, 29, 13, 28, 12, 27, 11, 26, 10, 25, 9, 24, 8, 23, 7, 22, 6, 21, 5,
                                       20, 4, 19, 3, 18, 2, 17, 1, 16, 0);
  return _mm512_permutexvar_epi16(idx, v);
}

// Strip-of-pairs packing of a K x W row-major matrix S (B, or A^T): strip s holds columns [16s, 16s + 16),
// pair p of its column j at s * (Kp / 2 * 32) + p * 32 + 2j. Writes strip s whole (zero past K and W).
LOOM_TARGET_AVX512_BF16 void avx512bf16_pack_strips(const float* S, int64_t ld, int64_t K, int64_t W, int64_t Kp,
                                                    int64_t s, uint16_t* out) {
  uint16_t* dst = out + s * (Kp / 2 * 32);
  const int64_t c0 = s * 16, n = std::max<int64_t>(0, std::min<int64_t>(16, W - c0));
  const __mmask16 m = __mmask16((1u << n) - 1u);
  for (int64_t k = 0; k < Kp; k += 2, dst += 32) {
    const float* r0 = n > 0 && k < K ? S + k * ld + c0 : nullptr;
    const float* r1 = n > 0 && k + 1 < K ? S + (k + 1) * ld + c0 : nullptr;
    _mm512_storeu_si512(dst, avx512bf16_pairs(r0, r1, m));
  }
}

// The same strips from S^T given as a W x K row-major matrix T (B^T in x W^T): the 16 rows of a strip are
// rounded 32 columns (16 pairs) at a time, then a 16 x 16 transpose of 32-bit pairs writes 16 packed rows.
LOOM_TARGET_AVX512_BF16 void avx512bf16_pack_strips_t(const float* T, int64_t ld, int64_t K, int64_t W, int64_t Kp,
                                                      int64_t s, uint16_t* out) {
  uint16_t* dst = out + s * (Kp / 2 * 32);
  const int64_t c0 = s * 16, n = std::max<int64_t>(0, std::min<int64_t>(16, W - c0));
  alignas(64) uint32_t blk[16][16];
  for (int64_t k0 = 0; k0 < Kp; k0 += 32) {
    const int64_t kn = std::min<int64_t>(32, K - k0);
    const __mmask16 lo = __mmask16(kn >= 16 ? 0xffffu : (1u << std::max<int64_t>(kn, 0)) - 1u);
    const __mmask16 hi = __mmask16(kn >= 32 ? 0xffffu : kn > 16 ? (1u << (kn - 16)) - 1u : 0u);
    for (int64_t j = 0; j < 16; ++j) {
      if (j >= n || kn <= 0) { _mm512_store_si512(blk[j], _mm512_setzero_si512()); continue; }
      const float* r = T + (c0 + j) * ld + k0;
      const __m512 a = _mm512_maskz_loadu_ps(lo, r), b = _mm512_maskz_loadu_ps(hi, r + 16);
      _mm512_store_si512(blk[j], (__m512i)_mm512_cvtne2ps_pbh(b, a));  // 32 bf16 in k order = 16 pairs
    }
    const int64_t pairs = std::min<int64_t>(16, (Kp - k0) / 2);
    for (int64_t p = 0; p < pairs; ++p) {
      uint32_t row[16];
      for (int j = 0; j < 16; ++j) row[j] = blk[j][p];
      std::memcpy(dst + (k0 / 2 + p) * 32, row, 64);
    }
  }
}

// Row r of row-major A rounded to bf16 into a row of Kp (even) elements, zero past K (all zero for r >= M).
LOOM_TARGET_AVX512_BF16 void avx512bf16_pack_row(const float* A, int64_t lda, int64_t M, int64_t K, int64_t Kp,
                                                 int64_t r, uint16_t* out) {
  uint16_t* dst = out + r * Kp;
  for (int64_t k = 0; k < Kp; k += 32) {
    const int64_t kn = r < M ? std::min<int64_t>(32, K - k) : 0;
    const __mmask16 lo = __mmask16(kn >= 16 ? 0xffffu : (1u << std::max<int64_t>(kn, 0)) - 1u);
    const __mmask16 hi = __mmask16(kn >= 32 ? 0xffffu : kn > 16 ? (1u << (kn - 16)) - 1u : 0u);
    const float* src = A + r * lda + k;
    const __m512 a = kn > 0 ? _mm512_maskz_loadu_ps(lo, src) : _mm512_setzero_ps();
    const __m512 b = kn > 16 ? _mm512_maskz_loadu_ps(hi, src + 16) : _mm512_setzero_ps();
    const __m512i v = (__m512i)_mm512_cvtne2ps_pbh(b, a);
    const int64_t w = std::min<int64_t>(32, Kp - k);
    if (w == 32) _mm512_storeu_si512(dst + k, v);
    else _mm512_mask_storeu_epi16(dst + k, __mmask32((1ull << w) - 1ull), v);
  }
}

// One 8 x 32 strip of C: rows [0, mr) of 8 from `a` (row 0's pair k_lo / 2 at a.p), columns [0, nr) of 32 from
// strips b0 and b1 (pair k_lo / 2 at each), `pairs` (k, k+1) pairs. C = alpha acc + beta C.
LOOM_TARGET_AVX512_BF16 void avx512bf16_strip(PackedA a, const uint16_t* b0, const uint16_t* b1, int64_t pairs,
                                              int64_t mr, int64_t nr, float alpha, float beta, float* C, int64_t ldc) {
  __m512 c[8][2];
  for (int r = 0; r < 8; ++r) c[r][0] = c[r][1] = _mm512_setzero_ps();
  const uint16_t* ap = a.p;
  for (int64_t p = 0; p < pairs; ++p, ap += a.ks, b0 += 32, b1 += 32) {
    const __m512bh v0 = (__m512bh)_mm512_loadu_si512(b0), v1 = (__m512bh)_mm512_loadu_si512(b1);
#pragma GCC unroll 8
    for (int r = 0; r < 8; ++r) {
      int32_t w;
      std::memcpy(&w, ap + r * a.rs, 4);
      const __m512bh x = (__m512bh)_mm512_set1_epi32(w);
      c[r][0] = _mm512_dpbf16_ps(c[r][0], x, v0);
      c[r][1] = _mm512_dpbf16_ps(c[r][1], x, v1);
    }
  }
  const __mmask16 m0 = __mmask16(nr >= 16 ? 0xffffu : (1u << nr) - 1u);
  const __mmask16 m1 = __mmask16(nr >= 32 ? 0xffffu : nr > 16 ? (1u << (nr - 16)) - 1u : 0u);
  const __m512 va = _mm512_set1_ps(alpha), vb = _mm512_set1_ps(beta);
  for (int r = 0; r < 8 && r < mr; ++r) {
    float* row = C + r * ldc;
    __m512 x0 = _mm512_mul_ps(va, c[r][0]), x1 = _mm512_mul_ps(va, c[r][1]);
    if (beta != 0.0f) {  // beta == 0 never reads C (NaN there stays out)
      x0 = _mm512_fmadd_ps(vb, _mm512_maskz_loadu_ps(m0, row), x0);
      x1 = _mm512_fmadd_ps(vb, _mm512_maskz_loadu_ps(m1, row + 16), x1);
    }
    _mm512_mask_storeu_ps(row, m0, x0);
    _mm512_mask_storeu_ps(row + 16, m1, x1);
  }
}

}  // namespace

void gemm_avx512bf16(bool ta, bool tb, int64_t M, int64_t N, int64_t K, float alpha, const float* A, int64_t lda,
                     const float* B, int64_t ldb, float beta, float* C, int64_t ldc) {
  const int64_t Kp = round_up(K, 2), Mp = round_up(M, 32), Np = round_up(N, 32);
  const int64_t a_strips = Mp / 16, b_strips = Np / 16;
  thread_local std::vector<uint16_t> abuf, bbuf;  // grown, never shrunk or cleared: every call writes all it reads
  const size_t a_need = size_t(Mp * Kp), b_need = size_t(Np * Kp);
  if (abuf.size() < a_need) abuf.resize(a_need);
  if (bbuf.size() < b_need) bbuf.resize(b_need);
  uint16_t* Ap = abuf.data();
  uint16_t* Bp = bbuf.data();
  auto a_at = [&](int64_t m, int64_t pair) {  // row m, pair `pair`
    return ta ? Ap + (m / 16) * (Kp / 2 * 32) + pair * 32 + (m % 16) * 2 : Ap + m * Kp + pair * 2;
  };
  // K chunks (even, <= 1024) and work items (32-row block x column panel of ~256 KB of packed B).
  constexpr int64_t kKc = 1024;
  const int64_t chunks = (Kp + kKc - 1) / kKc, Kc = round_up((Kp + chunks - 1) / chunks, 2);
  const int64_t panel = std::min(Np, std::max<int64_t>(32, (131072 / Kc) / 32 * 32));
  const int64_t panels = (Np + panel - 1) / panel, mblocks = Mp / 32, items = panels * mblocks;
  const double flops = 2.0 * double(M) * double(N) * double(K);
  const int64_t bstride = Kp / 2 * 32;
#pragma omp parallel if (flops > 4e6)
  {
    // Packing: A rows (or strips) and B strips, one barrier before the products.
    if (ta) {
#pragma omp for schedule(static) nowait
      for (int64_t s = 0; s < a_strips; ++s) avx512bf16_pack_strips(A, lda, K, M, Kp, s, Ap);
    } else {
#pragma omp for schedule(static) nowait
      for (int64_t r = 0; r < Mp; ++r) avx512bf16_pack_row(A, lda, M, K, Kp, r, Ap);
    }
    if (tb) {
#pragma omp for schedule(static)
      for (int64_t s = 0; s < b_strips; ++s) avx512bf16_pack_strips_t(B, ldb, K, N, Kp, s, Bp);
    } else {
#pragma omp for schedule(static)
      for (int64_t s = 0; s < b_strips; ++s) avx512bf16_pack_strips(B, ldb, K, N, Kp, s, Bp);
    }
    // Static split of the items in panel order; each thread owns its C blocks in every chunk.
    const auto [ib, ie] = thread_share(items);
    for (int64_t k0 = 0; k0 < Kp; k0 += Kc) {
      const int64_t pairs = (std::min(Kp, k0 + Kc) - k0) / 2;
      const float bk = k0 == 0 ? beta : 1.0f;
      for (int64_t item = ib; item < ie; ++item) {
        const int64_t p = item / mblocks, m0 = (item % mblocks) * 32;
        const int64_t n_lo = p * panel, n_hi = std::min(Np, n_lo + panel);
        for (int64_t n0 = n_lo; n0 < std::min(n_hi, N); n0 += 32) {
          const uint16_t* b0 = Bp + (n0 / 16) * bstride + (k0 / 2) * 32;
          const uint16_t* b1 = b0 + bstride;
          const int64_t nr = std::min<int64_t>(32, N - n0);
          for (int64_t r0 = m0; r0 < std::min(m0 + 32, M); r0 += 8) {
            const PackedA a = ta ? PackedA{a_at(r0, k0 / 2), 2, 32} : PackedA{a_at(r0, k0 / 2), Kp, 2};
            avx512bf16_strip(a, b0, b1, pairs, std::min<int64_t>(8, M - r0), nr, alpha, bk, C + r0 * ldc + n0, ldc);
          }
        }
      }
    }
  }
}

#else

void gemm_avx512bf16(bool, bool, int64_t, int64_t, int64_t, float, const float*, int64_t, const float*, int64_t, float,
                     float*, int64_t) {
  LOOM_FAIL("gemm_avx512bf16: needs an x86-64 CPU with avx512bf16");
}

#endif

}  // namespace loom::cpu
