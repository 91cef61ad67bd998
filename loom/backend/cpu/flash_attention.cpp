// Fused attention kernels (see flash_attention.h). Work is split into query tiles of kBQ rows and key
// tiles of kBK keys; a key tile is transposed into a small (D, kBK) buffer so that every tile product is a
// row-major small_gemm with registers holding its accumulators. Tiles that a causal mask hides entirely
// are skipped, and on the diagonal tiles groups of 16 rows multiply only the keys they see, so causal
// attention does about half the work.
#include "loom/backend/cpu/flash_attention.h"

#include <algorithm>
#include <cmath>
#include <limits>
#include <type_traits>
#include <vector>

#include "loom/backend/cpu/exp_avx512.h"
#include "loom/backend/cpu/isa.h"
#include "loom/backend/cpu/transpose_avx512.h"
#if defined(LOOM_X86_KERNELS)
#include <immintrin.h>
#endif

// Tile products keep 4 x 64 floats of C in AVX-512 registers; GCC's default 256-bit preference would
// split them and spill (measured 60 vs 160 GFLOP/s on a 64^3 tile).
#pragma GCC target("prefer-vector-width=512")
#include "loom/backend/cpu/lane_sum.h"
#include "loom/backend/cpu/small_gemm.h"
#include "loom/backend/cpu/vec_math.h"

namespace loom::cpu {

namespace {

constexpr int64_t kBQ = 64;  // query rows per forward task
constexpr int64_t kBK = 64;  // keys per tile (a multiple of the vector width)
constexpr int64_t kG = 16;   // row / key groups on the causal diagonal

// (b, h)'s first element and row stride in q, k, v or out (AttnShape's layouts; packed: bh * T rows of width,
// or bh * bh_stride elements when that is set).
struct Rows {
  int64_t off, rs;
};
inline Rows rows_of(const AttnShape::Layout& l, int64_t bh, int64_t T, int64_t width, int64_t bh_stride = 0) {
  if (l.heads == 0) return {bh * (bh_stride ? bh_stride : T * width), width};
  return {(bh / l.heads) * l.b_stride + (bh % l.heads) * l.h_stride, l.row_stride};
}

// Columns a group's product needs, rounded up to a small_gemm block (a multiple of 16, at most kBK).
inline int64_t round_up(int64_t n) { return std::min(kBK, (n + 15) / 16 * 16); }

template <class T>
constexpr T kNegInf = -std::numeric_limits<T>::infinity();

// e^x for x <= 0, flushed to zero below -80: masked scores (-inf) would otherwise make vexp build a
// subnormal before discarding it, and subnormal arithmetic costs ~100x on x86 (measured: a causal tile
// took 1.5x as long as a full one). e^-80 is 2e-35 of the row's largest term, far below f32 rounding.
template <class T>
inline T exp_or_zero(T x) {
  const T e = vexp(x < T(-80) ? T(-80) : x);
  return x < T(-80) ? T(0) : e;
}

#if defined(LOOM_X86_KERNELS)
// exp_row for f32 with exp_avx512.h's exponential (vexp's selects made these rows ~4% of a W3 training step).
// Lanes below -80 give 0 as exp_or_zero; NaN stays NaN (the unordered compare keeps it).
LOOM_TARGET_AVX512 float exp_row_avx512(float* sc, float m) {
  const __m512 vm = _mm512_set1_ps(m), lo = _mm512_set1_ps(-80.0f);
  __m512 sum = _mm512_setzero_ps();
  for (int64_t j = 0; j < kBK; j += 16) {
    const __m512 x = _mm512_sub_ps(_mm512_loadu_ps(sc + j), vm);
    const __m512 e = _mm512_maskz_mov_ps(_mm512_cmp_ps_mask(x, lo, _CMP_NLT_UQ), exp_avx512(x));
    _mm512_storeu_ps(sc + j, e);
    sum = _mm512_add_ps(sum, e);
  }
  return _mm512_reduce_add_ps(sum);
}
#endif

// sc[j] = exp_or_zero(sc[j] - m) over one kBK-wide row; returns the row's sum. wide: the AVX-512 form may run.
template <class T>
inline T exp_row(T* sc, T m, bool wide) {
#if defined(LOOM_X86_KERNELS)
  if constexpr (std::is_same_v<T, float>) {
    if (wide) return exp_row_avx512(sc, m);
  }
#endif
  (void)wide;
  T sum = 0;
#pragma omp simd reduction(+ : sum)
  for (int64_t j = 0; j < kBK; ++j) {
    sc[j] = exp_or_zero(sc[j] - m);
    sum += sc[j];
  }
  return sum;
}

#if defined(LOOM_X86_KERNELS)
// transpose_tile of a full f32 tile: one 16-lane gather per (d, 16 keys) instead of 16 scalar moves (the
// scalar transposes were ~40% of backward at D = 64, T = 64).
LOOM_TARGET_AVX512 void transpose_full_tile_avx512(const float* k, int64_t ld, int64_t j0, int64_t D, float* kt) {
  if (D % 16 == 0) {  // whole 16 x 16 blocks through registers (shuffles): the gathers were 2.5% of a W3 step
    for (int64_t d = 0; d < D; d += 16)
      for (int64_t jb = 0; jb < kBK; jb += 16) transpose16_avx512(k + (j0 + jb) * ld + d, ld, kt + d * kBK + jb, kBK);
    return;
  }
  const __m512i idx = _mm512_mullo_epi32(_mm512_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15),
                                         _mm512_set1_epi32(int32_t(ld)));
  for (int64_t d = 0; d < D; ++d)
    for (int64_t jb = 0; jb < kBK; jb += 16)
      // The masked form with a zero source: the plain one starts from an "undefined" vector that GCC 12's
      // -Wmaybe-uninitialized reports inside its own header.
      _mm512_storeu_ps(kt + d * kBK + jb,
                       _mm512_mask_i32gather_ps(_mm512_setzero_ps(), 0xFFFF, idx, k + (j0 + jb) * ld + d, 4));
}
#endif

// kt(d, j) = k(j0 + j, d) for j < nk, zero beyond (so the padded lanes compute harmless zeros); k's rows are ld
// apart. wide: the AVX-512 forms may run (cpu::has_avx512(), asked once per kernel call).
template <class T>
void transpose_tile(const T* k, int64_t ld, int64_t j0, int64_t nk, int64_t D, T* kt, bool wide) {
#if defined(LOOM_X86_KERNELS)
  if constexpr (std::is_same_v<T, float>) {
    if (wide && nk == kBK && 15 * ld < (int64_t(1) << 31)) return transpose_full_tile_avx512(k, ld, j0, D, kt);
  }
#endif
  (void)wide;
  for (int64_t d = 0; d < D; ++d) {
    T* row = kt + d * kBK;
    for (int64_t j = 0; j < nk; ++j) row[j] = k[(j0 + j) * ld + d];
    for (int64_t j = nk; j < kBK; ++j) row[j] = T(0);
  }
}

// Scales the scores of row i over keys j0.. and applies the causal cut, the masks and the tile's end.
template <class T>
inline void mask_scores(const AttnShape& s, const AttnMask<T>& m, int64_t bh, int64_t i, int64_t j0, int64_t nk, T* sc) {
  const T scale = T(s.scale);
  // Keys past `lim` are hidden: the tile's end, or the causal cut j <= i.
  const int64_t lim = s.causal ? std::min<int64_t>(nk, i - j0 + 1) : nk;
#pragma omp simd
  for (int64_t j = 0; j < kBK; ++j) sc[j] = j < lim ? sc[j] * scale : kNegInf<T>;
  if (m.keep) {
    const bool* mk = m.keep + m.bh_offset[bh] + i * m.si + j0 * m.sj;
    for (int64_t j = 0; j < lim; ++j)
      if (!mk[j * m.sj]) sc[j] = kNegInf<T>;
  } else if (m.add) {
    const T* ma = m.add + m.bh_offset[bh] + i * m.si + j0 * m.sj;
    for (int64_t j = 0; j < lim; ++j) sc[j] += ma[j * m.sj];
  }
}

// Number of keys that query rows [i0, i0 + nq) may see at all (the causal cut trims the key range).
inline int64_t key_end(const AttnShape& s, int64_t i0, int64_t nq) {
  return s.causal ? std::min(s.Tk, i0 + nq) : s.Tk;
}

// Makes row r of a score tile (scaled and masked) into probabilities against the running max, rescaling
// the row's earlier numerators and denominator when the max grows. Returns false for a row that has
// seen no unmasked key yet (its tile row is zeroed so the P.V product adds nothing).
template <class T>
inline void online_softmax_row(T* sc, T& mx, T& l, T* acc_row, int64_t Dv, bool wide) {
  // Lane-wise maxima first: GCC leaves a float max reduction as a scalar chain (it was 45% of forward).
  constexpr int64_t kLanes = 16;
  T lane[kLanes];
  std::fill(lane, lane + kLanes, kNegInf<T>);
  for (int64_t j = 0; j < kBK; j += kLanes)
#pragma omp simd
    for (int64_t t = 0; t < kLanes; ++t) lane[t] = lane[t] > sc[j + t] ? lane[t] : sc[j + t];
  T tmax = kNegInf<T>;
  for (int64_t t = 0; t < kLanes; ++t) tmax = lane[t] > tmax ? lane[t] : tmax;
  const T mnew = std::max(mx, tmax);
  if (mnew == kNegInf<T>) {
    std::fill(sc, sc + kBK, T(0));
    return;
  }
  const T sum = exp_row(sc, mnew, wide);
  if (mnew != mx) {
    const T alpha = exp_or_zero(mx - mnew);  // 0 on the first tile that has an unmasked key
    l *= alpha;
#pragma omp simd
    for (int64_t d = 0; d < Dv; ++d) acc_row[d] *= alpha;
    mx = mnew;
  }
  l += sum;
}

template <class T>
void forward_tile(const AttnShape& s, const T* q, const T* k, const T* v, const AttnMask<T>& m, T* out, T* lse,
                  int64_t bh, int64_t i0, std::vector<T>& buf, bool wide) {
  const int64_t D = s.D, Dv = s.Dv, nq = std::min(kBQ, s.Tq - i0);
  buf.resize(D * kBK + kBQ * kBK + kBQ * Dv);
  T* kt = buf.data();
  T* sc = kt + D * kBK;     // (kBQ, kBK) scores, then probabilities
  T* acc = sc + kBQ * kBK;  // (nq, Dv) running numerators
  T mx[kBQ], l[kBQ];
  std::fill(acc, acc + nq * Dv, T(0));
  std::fill(mx, mx + kBQ, kNegInf<T>);
  std::fill(l, l + kBQ, T(0));
  const bool slots = !s.kv_bh_offset.empty();
  const Rows qr = rows_of(s.q_layout, bh, s.Tq, D), orr = rows_of(s.o_layout, bh, s.Tq, Dv);
  const Rows kr = slots ? Rows{s.kv_bh_offset[size_t(bh)], D} : rows_of(s.k_layout, bh, s.Tk, D, s.k_bh_stride);
  const Rows vr = slots ? Rows{s.kv_bh_offset[size_t(bh)], Dv} : rows_of(s.v_layout, bh, s.Tk, Dv, s.v_bh_stride);
  const T* qb = q + qr.off + i0 * qr.rs;
  const T* kb = k + kr.off;
  const T* vb = v + vr.off;
  const int64_t jend = std::min(key_end(s, i0, nq), s.bh_keys.empty() ? s.Tk : s.bh_keys[size_t(bh)]);
  for (int64_t j0 = 0; j0 < jend; j0 += kBK) {
    const int64_t nk = std::min(kBK, jend - j0);
    const int64_t r0 = s.causal ? std::max<int64_t>(0, j0 - i0) : 0;  // rows before r0 see none of the tile
    const int64_t nr = nq - r0;
    transpose_tile(kb, kr.rs, j0, nk, D, kt, wide);
    // A tile on the causal diagonal: each group of kG rows multiplies only the keys it can see (columns
    // past them keep stale values that mask_scores overwrites with -inf).
    const bool diag = s.causal && j0 + nk - 1 > i0 + r0;
    if (!diag) small_gemm(nr, kBK, D, qb + r0 * qr.rs, qr.rs, 1, kt, kBK, sc + r0 * kBK, kBK, false);
    else
      for (int64_t g = r0; g < nq; g += kG) {
        const int64_t gn = std::min(kG, nq - g), vis = std::min(nk, i0 + g + gn - j0);
        small_gemm(gn, round_up(vis), D, qb + g * qr.rs, qr.rs, 1, kt, kBK, sc + g * kBK, kBK, false);
      }
    for (int64_t r = r0; r < nq; ++r) {
      mask_scores(s, m, bh, i0 + r, j0, nk, sc + r * kBK);
      online_softmax_row(sc + r * kBK, mx[r], l[r], acc + r * Dv, Dv, wide);
    }
    if (!diag) small_gemm(nr, Dv, nk, sc + r0 * kBK, kBK, 1, vb + j0 * vr.rs, vr.rs, acc + r0 * Dv, Dv, true);
    else
      for (int64_t g = r0; g < nq; g += kG) {
        const int64_t gn = std::min(kG, nq - g), vis = std::min(nk, i0 + g + gn - j0);
        small_gemm(gn, Dv, vis, sc + g * kBK, kBK, 1, vb + j0 * vr.rs, vr.rs, acc + g * Dv, Dv, true);
      }
  }
  for (int64_t r = 0; r < nq; ++r) {
    T* o = out + orr.off + (i0 + r) * orr.rs;
    const T inv = l[r] > 0 ? T(1) / l[r] : T(0);
#pragma omp simd
    for (int64_t d = 0; d < Dv; ++d) o[d] = acc[r * Dv + d] * inv;
    lse[bh * s.Tq + i0 + r] = l[r] > 0 ? mx[r] + std::log(l[r]) : kNegInf<T>;
  }
}

#if defined(LOOM_X86_KERNELS)
// forward_one_query for f32 heads of 16 * ND (keys) and 16 * NV (values) floats: q and the running numerators
// stay in registers (through memory, each key's update waited on the previous one's store: ~10x slower).
template <int ND, int NV>
LOOM_TARGET_AVX512 void one_query_f32_avx512(const AttnShape& s, const AttnMask<float>& m, int64_t bh, const float* qb, const float* kb,
                   const float* vb, int64_t jend, float* sc, float* o, float* lse) {
  __m512 qv[ND], acc[NV];
#pragma GCC unroll 8
  for (int i = 0; i < ND; ++i) qv[i] = _mm512_loadu_ps(qb + 16 * i);
#pragma GCC unroll 8
  for (int i = 0; i < NV; ++i) acc[i] = _mm512_setzero_ps();
  float mx = kNegInf<float>, l = 0, spill[16 * NV];
  for (int64_t j0 = 0; j0 < jend; j0 += kBK) {
    const int64_t nk = std::min(kBK, jend - j0);
    for (int64_t j = 0; j < nk; ++j) {
      const float* kr = kb + (j0 + j) * 16 * ND;
      __m512 t = _mm512_mul_ps(qv[0], _mm512_loadu_ps(kr));
#pragma GCC unroll 8
      for (int i = 1; i < ND; ++i) t = _mm512_fmadd_ps(qv[i], _mm512_loadu_ps(kr + 16 * i), t);
      sc[j] = lane_sum_avx512(t);
    }
    mask_scores(s, m, bh, 0, j0, nk, sc);
    // The online softmax rescales the numerators in memory: once a tile, so they go there and back.
#pragma GCC unroll 8
    for (int i = 0; i < NV; ++i) _mm512_storeu_ps(spill + 16 * i, acc[i]);
    online_softmax_row(sc, mx, l, spill, 16 * NV, true);
#pragma GCC unroll 8
    for (int i = 0; i < NV; ++i) acc[i] = _mm512_loadu_ps(spill + 16 * i);
    for (int64_t j = 0; j < nk; ++j) {
      const __m512 p = _mm512_set1_ps(sc[j]);
      const float* vr = vb + (j0 + j) * 16 * NV;
#pragma GCC unroll 8
      for (int i = 0; i < NV; ++i) acc[i] = _mm512_fmadd_ps(p, _mm512_loadu_ps(vr + 16 * i), acc[i]);
    }
  }
  const __m512 inv = _mm512_set1_ps(l > 0 ? 1.0f / l : 0.0f);
#pragma GCC unroll 8
  for (int i = 0; i < NV; ++i) _mm512_storeu_ps(o + 16 * i, _mm512_mul_ps(acc[i], inv));
  *lse = l > 0 ? mx + std::log(l) : kNegInf<float>;
}

// The register-resident kernel for the head sizes it covers (multiples of 16 up to 128; GPT-2's 64, W3's 32);
// false for the others.
template <class T>
bool one_query_registers(const AttnShape& s, const AttnMask<T>& m, int64_t bh, const T* qb, const T* kb, const T* vb,
                         int64_t jend, T* sc, T* o, T* lse) {
  if constexpr (!std::is_same_v<T, float>) {
    return false;
  } else {
    if (s.D != s.Dv || s.D % 16 != 0) return false;
    switch (s.D / 16) {
      case 1: one_query_f32_avx512<1, 1>(s, m, bh, qb, kb, vb, jend, sc, o, lse); return true;
      case 2: one_query_f32_avx512<2, 2>(s, m, bh, qb, kb, vb, jend, sc, o, lse); return true;
      case 4: one_query_f32_avx512<4, 4>(s, m, bh, qb, kb, vb, jend, sc, o, lse); return true;
      case 8: one_query_f32_avx512<8, 8>(s, m, bh, qb, kb, vb, jend, sc, o, lse); return true;
      default: return false;
    }
  }
}
#endif

// A decode step's one query row: each score is the dot product of q with a key row as stored, so no key tile
// is transposed (for one row of scores the transposes were most of a decode step's attention, and they grow
// with every sequence a batched step carries). Same masks, online softmax and result as forward_tile.
template <class T>
void forward_one_query(const AttnShape& s, const T* q, const T* k, const T* v, const AttnMask<T>& m, T* out, T* lse,
                       int64_t bh, std::vector<T>& buf, bool wide) {
  const int64_t D = s.D, Dv = s.Dv;
  buf.resize(kBK + Dv);
  T* sc = buf.data();
  T* acc = sc + kBK;
  std::fill(acc, acc + Dv, T(0));
  T mx = kNegInf<T>, l = 0;
  const T* qb = q + bh * D;
  const bool slots = !s.kv_bh_offset.empty();
  const T* kb = k + (slots ? s.kv_bh_offset[size_t(bh)] : bh * (s.k_bh_stride ? s.k_bh_stride : s.Tk * D));
  const T* vb = v + (slots ? s.kv_bh_offset[size_t(bh)] : bh * (s.v_bh_stride ? s.v_bh_stride : s.Tk * Dv));
  const int64_t jend = std::min(key_end(s, 0, 1), s.bh_keys.empty() ? s.Tk : s.bh_keys[size_t(bh)]);
#if defined(LOOM_X86_KERNELS)
  if (wide && one_query_registers(s, m, bh, qb, kb, vb, jend, sc, out + bh * Dv, lse + bh)) return;
#else
  (void)wide;
#endif
  for (int64_t j0 = 0; j0 < jend; j0 += kBK) {
    const int64_t nk = std::min(kBK, jend - j0);
    for (int64_t j = 0; j < nk; ++j) {
      const T* kr = kb + (j0 + j) * D;
      T a = 0;
#pragma omp simd reduction(+ : a)
      for (int64_t d = 0; d < D; ++d) a += qb[d] * kr[d];
      sc[j] = a;
    }
    mask_scores(s, m, bh, 0, j0, nk, sc);
    online_softmax_row(sc, mx, l, acc, Dv, wide);
    for (int64_t j = 0; j < nk; ++j) {
      const T p = sc[j];
      const T* vr = vb + (j0 + j) * Dv;
#pragma omp simd
      for (int64_t d = 0; d < Dv; ++d) acc[d] += p * vr[d];
    }
  }
  T* o = out + bh * Dv;
  const T inv = l > 0 ? T(1) / l : T(0);
#pragma omp simd
  for (int64_t d = 0; d < Dv; ++d) o[d] = acc[d] * inv;
  lse[bh] = l > 0 ? mx + std::log(l) : kNegInf<T>;
}

// One (b, h): key tiles outer (their dk, dv rows accumulate in the tile buffers), query blocks inner.
template <class T>
void backward_head(const AttnShape& s, const T* q, const T* k, const T* v, const AttnMask<T>& m, const T* out,
                   const T* lse, const T* dout, T* dq, T* dk, T* dv, int64_t bh, std::vector<T>& buf, bool wide) {
  const int64_t D = s.D, Dv = s.Dv, Tq = s.Tq, Tk = s.Tk;
  buf.resize(D * kBK + Dv * kBK + 2 * kBK * kBK + kBK * D + kBK * Dv + Tq);
  T* kt = buf.data();
  T* vt = kt + D * kBK;
  T* p = vt + Dv * kBK;    // (kBK queries, kBK keys) probabilities
  T* ds = p + kBK * kBK;   // dP, then dS * scale
  T* gk = ds + kBK * kBK;  // (kBK, D) this tile's dk
  T* gv = gk + kBK * D;    // (kBK, Dv)
  T* delta = gv + kBK * Dv;  // (Tq) rowsum(dout * out) = sum_j p_j dp_j
  // Rows of q, k, v, out (and of dq, dk, dv, dout, laid out alike): packed or in place (AttnShape's layouts).
  const Rows qr = rows_of(s.q_layout, bh, Tq, D), kr = rows_of(s.k_layout, bh, Tk, D), vr = rows_of(s.v_layout, bh, Tk, Dv),
             orr = rows_of(s.o_layout, bh, Tq, Dv);
  const int64_t qs = qr.rs, ks = kr.rs, os = orr.rs;
  const T* qb = q + qr.off;
  const T* kb = k + kr.off;
  const T* vb = v + vr.off;
  const T* ob = out + orr.off;
  const T* gob = dout + orr.off;
  const T* lb = lse + bh * Tq;
  T* dqb = dq + qr.off;
  for (int64_t i = 0; i < Tq; ++i) {
    T acc = 0;
#pragma omp simd reduction(+ : acc)
    for (int64_t d = 0; d < Dv; ++d) acc += gob[i * os + d] * ob[i * os + d];
    delta[i] = acc;
    std::fill(dqb + i * qs, dqb + i * qs + D, T(0));
  }
  const T scale = T(s.scale);
  for (int64_t j0 = 0; j0 < Tk; j0 += kBK) {
    const int64_t nk = std::min(kBK, Tk - j0);
    transpose_tile(kb, ks, j0, nk, D, kt, wide);
    transpose_tile(vb, vr.rs, j0, nk, Dv, vt, wide);
    std::fill(gk, gk + kBK * D, T(0));
    std::fill(gv, gv + kBK * Dv, T(0));
    // Under the causal mask only rows i >= j0 see any key of this tile.
    for (int64_t i0 = s.causal ? j0 : 0; i0 < Tq; i0 += kBK) {
      const int64_t nq = std::min(kBK, Tq - i0);
      // On the causal diagonal (i0 == j0) row groups and key groups multiply only what they can see.
      const bool diag = s.causal && j0 + nk - 1 > i0;
      for (int64_t g = 0; g < nq; g += diag ? kG : nq) {
        const int64_t gn = diag ? std::min(kG, nq - g) : nq, ncol = diag ? round_up(std::min(nk, i0 + g + gn - j0)) : kBK;
        small_gemm(gn, ncol, D, qb + (i0 + g) * qs, qs, 1, kt, kBK, p + g * kBK, kBK, false);
        small_gemm(gn, ncol, Dv, gob + (i0 + g) * os, os, 1, vt, kBK, ds + g * kBK, kBK, false);
      }
      for (int64_t r = 0; r < nq; ++r) {
        T* pr = p + r * kBK;
        T* dr = ds + r * kBK;
        const T L = lb[i0 + r], di = delta[i0 + r];
        if (L == kNegInf<T>) {  // a fully masked row: no gradient
          std::fill(pr, pr + kBK, T(0));
          std::fill(dr, dr + kBK, T(0));
          continue;
        }
        mask_scores(s, m, bh, i0 + r, j0, nk, pr);
        exp_row(pr, L, wide);  // masked: 0
#pragma omp simd
        for (int64_t j = 0; j < kBK; ++j) dr[j] = pr[j] == T(0) ? T(0) : pr[j] * (dr[j] - di) * scale;  // stale columns stay out
      }
      // dv += P^T dO, dk += dS^T Q, dq += dS K (P^T and dS^T read through strides).
      if (!diag) {
        small_gemm(nk, Dv, nq, p, 1, kBK, gob + i0 * os, os, gv, Dv, true);
        small_gemm(nk, D, nq, ds, 1, kBK, qb + i0 * qs, qs, gk, D, true);
        small_gemm(nq, D, nk, ds, kBK, 1, kb + j0 * ks, ks, dqb + i0 * qs, qs, true);
        continue;
      }
      for (int64_t c = 0; c < nk; c += kG) {  // keys c.. are seen from query row rf on
        const int64_t cn = std::min(kG, nk - c), rf = std::max<int64_t>(0, j0 + c - i0);
        if (rf >= nq) break;
        small_gemm(cn, Dv, nq - rf, p + rf * kBK + c, 1, kBK, gob + (i0 + rf) * os, os, gv + c * Dv, Dv, true);
        small_gemm(cn, D, nq - rf, ds + rf * kBK + c, 1, kBK, qb + (i0 + rf) * qs, qs, gk + c * D, D, true);
      }
      for (int64_t g = 0; g < nq; g += kG) {
        const int64_t gn = std::min(kG, nq - g), vis = std::min(nk, i0 + g + gn - j0);
        small_gemm(gn, D, vis, ds + g * kBK, kBK, 1, kb + j0 * ks, ks, dqb + (i0 + g) * qs, qs, true);
      }
    }
    for (int64_t r = 0; r < nk; ++r) {
      std::copy(gk + r * D, gk + (r + 1) * D, dk + kr.off + (j0 + r) * ks);
      std::copy(gv + r * Dv, gv + (r + 1) * Dv, dv + vr.off + (j0 + r) * vr.rs);
    }
  }
}

}  // namespace

template <class T>
void flash_attention_forward(const AttnShape& s, const T* q, const T* k, const T* v, const AttnMask<T>& m, T* out, T* lse) {
  const int64_t tiles = (s.Tq + kBQ - 1) / kBQ, tasks = s.BH * tiles;
  const bool wide = has_avx512();
  // The one-query kernel reads packed heads (a decode step); heads in place take the tile kernel.
  const bool packed = s.q_layout.heads == 0 && s.k_layout.heads == 0 && s.v_layout.heads == 0 && s.o_layout.heads == 0;
  // Tasks are (head, query tile) pairs; dynamic because causal tiles near the end do more work.
#pragma omp parallel if (tasks > 1 && s.BH * s.Tq * s.Tk * s.D > 32768)
  {
    std::vector<T> buf;
#pragma omp for schedule(dynamic)
    for (int64_t t = 0; t < tasks; ++t) {
      if (s.Tq == 1 && packed) forward_one_query(s, q, k, v, m, out, lse, t, buf, wide);
      else forward_tile(s, q, k, v, m, out, lse, t / tiles, (t % tiles) * kBQ, buf, wide);
    }
  }
}

template <class T>
void flash_attention_backward(const AttnShape& s, const T* q, const T* k, const T* v, const AttnMask<T>& m,
                              const T* out, const T* lse, const T* dout, T* dq, T* dk, T* dv) {
  const bool wide = has_avx512();
#pragma omp parallel if (s.BH > 1 && s.BH * s.Tq * s.Tk * s.D > 32768)
  {
    std::vector<T> buf;
#pragma omp for schedule(dynamic)
    for (int64_t bh = 0; bh < s.BH; ++bh) backward_head(s, q, k, v, m, out, lse, dout, dq, dk, dv, bh, buf, wide);
  }
}

template void flash_attention_forward<float>(const AttnShape&, const float*, const float*, const float*,
                                             const AttnMask<float>&, float*, float*);
template void flash_attention_forward<double>(const AttnShape&, const double*, const double*, const double*,
                                              const AttnMask<double>&, double*, double*);
template void flash_attention_backward<float>(const AttnShape&, const float*, const float*, const float*,
                                              const AttnMask<float>&, const float*, const float*, const float*,
                                              float*, float*, float*);
template void flash_attention_backward<double>(const AttnShape&, const double*, const double*, const double*,
                                               const AttnMask<double>&, const double*, const double*, const double*,
                                               double*, double*, double*);

}  // namespace loom::cpu
