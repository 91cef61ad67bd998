// Winograd F(2x2, 3x3): each 2x2 block of output pixels ("tile") of a 3x3 stride-1 convolution reads a 4x4
// block d of the (zero-padded) input, and
//   y_tile = A^T [ sum over input channels c of (G g_c G^T) .* (B^T d_c B) ] A
// where .* is elementwise over the 4x4 transformed tile. Grouping the 16 positions k of that 4x4 product,
// the sum over c is 16 independent GEMMs M_k (OC x tiles) = U_k (OC x C) * V_k (C x tiles): 16 multiplies
// per tile and channel pair instead of 36 for the direct form, 2.25x fewer. The transforms are adds only
// (B, A) or done once per call on the small weight tensor (G), so they cost little next to the GEMMs.
//
// Layout: a chunk of B whole samples (about kTargetTiles tiles) is transformed into V[k][c][slot], slot =
// b * P + th * TW + tw, so tiles lie along the vector lanes: the input transform writes 16 tiles of one tile
// row per store, the GEMMs run over contiguous slots and the output transform reads 16 tiles per load and
// interleaves them back into two output rows. The tile grid covers ceil(OH/2) x ceil(OW/2) tiles; an odd
// output size computes the last row/column of tiles in full from the zero border and drops their outside half.
// Inputs are copied into zero-bordered planes first (as conv_direct.cpp does), so padding is free.
//
// Rounding: B and A have entries 0 and +-1 and G entries 0, 1, +-1/2 (exact in binary), so the only extra
// rounding is in the sums of up to four terms per transform; the tests measure the error against the double
// reference (tests/test_conv_winograd.cpp).
#include "loom/backend/cpu/conv_winograd.h"

#include <cblas.h>

#include <algorithm>
#include <cstring>
#include <vector>

#include <omp.h>

#include "loom/backend/cpu/isa.h"
#if defined(LOOM_X86_KERNELS)
#include <immintrin.h>
#endif
#include "loom/backend/cpu/loop.h"
#include "loom/core/tensor.h"

namespace loom::cpu {

namespace {

// Tiles per chunk: wide enough that each GEMM has a few hundred columns (W2's conv2: 4 samples of 36 tiles,
// 9 full 16-lane vectors), small enough that V (16 x C x tiles floats) stays in L2 while the 16 GEMMs
// read it once per block of output channels.
constexpr int64_t kTargetTiles = 144;
constexpr int64_t kMaxChunkFloats = int64_t(1) << 18;  // V of one chunk, and one sample's padded planes: 1 MB
constexpr int kRows = 8;                               // output channels per AVX-512 micro-tile
constexpr int kVecs = 3;                               // 16-tile vectors per micro-tile
constexpr int64_t kSlack = 64;  // floats after the padded planes: the AVX-512 input rows read past a row's end

inline int64_t round16(int64_t n) { return (n + 15) / 16 * 16; }

struct Plan {
  int64_t TH, TW, P;  // tile rows and columns of one sample, P = TH * TW
  int64_t Hq, Wq;     // a zero-bordered input plane: 2*TH + 2 rows of 2*TW + 2 floats
  int64_t B, T;       // samples per chunk; row pitch of V and M: B * P rounded up to 16, plus 16 slots that the
                      // AVX-512 input transform's unmasked stores may spill into
  int64_t OCB;        // blocks of kRows output channels
  int64_t VK, MK;     // distance between the 16 planes k of V (C rows of T) and of M (OC or kRows rows of T)
};

Plan make_plan(const ConvGeom& g, bool wide) {
  Plan p;
  p.TH = (g.OH + 1) / 2;
  p.TW = (g.OW + 1) / 2;
  p.P = p.TH * p.TW;
  p.Hq = 2 * p.TH + 2;
  p.Wq = 2 * p.TW + 2;
  const int64_t fit = std::max<int64_t>(1, kMaxChunkFloats / (16 * g.C * p.P));
  p.B = std::clamp<int64_t>((kTargetTiles + p.P - 1) / p.P, 1, std::min(fit, std::max<int64_t>(g.N, 1)));
  p.T = (p.B * p.P + 15) / 16 * 16 + 16;
  p.OCB = (g.OC + kRows - 1) / kRows;
  // One cache line more than the planes' size: with W2's sizes the planes were 20 KB apart, a multiple of
  // 4 KB, so the 16 stores of one tile (one per plane) all fell in the same L1 set (8 ways) and evicted each other.
  p.VK = g.C * p.T + 16;
  p.MK = (wide ? kRows : g.OC) * p.T + 16;
  return p;
}

// U[k][oc][c] = (G g G^T)[k / 4][k % 4] for the 3x3 kernel g = w[oc, c], G = [1 0 0; .5 .5 .5; .5 -.5 .5; 0 0 1].
// packed: the AVX-512 micro-kernel's layout instead, u[k][oc / 8][c][oc % 8], zero past OC (16 * OCB * C * 8).
void transform_weights(float* u, const float* w, int64_t OC, int64_t C, bool packed) {
  const int64_t OCB = (OC + kRows - 1) / kRows;
  if (packed) std::fill(u, u + 16 * OCB * C * kRows, 0.0f);
  auto at = [&](int64_t k, int64_t oc, int64_t c) {
    return packed ? ((k * OCB + oc / kRows) * C + c) * kRows + oc % kRows : (k * OC + oc) * C + c;
  };
  for (int64_t oc = 0; oc < OC; ++oc)
    for (int64_t c = 0; c < C; ++c) {
      const float* k = w + (oc * C + c) * 9;
      double q[4][3];  // G g, in double so the weights carry no extra rounding
      for (int j = 0; j < 3; ++j) {
        q[0][j] = k[j];
        q[1][j] = 0.5 * (double(k[j]) + k[3 + j] + k[6 + j]);
        q[2][j] = 0.5 * (double(k[j]) - k[3 + j] + k[6 + j]);
        q[3][j] = k[6 + j];
      }
      for (int i = 0; i < 4; ++i) {
        const double r[4] = {q[i][0], 0.5 * (q[i][0] + q[i][1] + q[i][2]), 0.5 * (q[i][0] - q[i][1] + q[i][2]), q[i][2]};
        for (int j = 0; j < 4; ++j) u[at(4 * i + j, oc, c)] = float(r[j]);
      }
    }
}

// The interiors of sample xn's zero-bordered planes. The borders stay zero: each thread zeroes its buffer
// once and only interiors are rewritten.
void pad_sample(float* pad, const float* xn, const ConvGeom& g, const Plan& p) {
  for (int64_t c = 0; c < g.C; ++c)
    for (int64_t h = 0; h < g.H; ++h)
      std::memcpy(pad + (c * p.Hq + h + g.ph) * p.Wq + g.pw, xn + (c * g.H + h) * g.W, size_t(g.W) * sizeof(float));
}

// ---- plain path: one tile at a time, the GEMMs through OpenBLAS

// V[k] at v + k * ldk (one channel's row, slot `slot0` = this sample's first tile) = B^T d B for every tile of
// one padded plane. B^T = [1 0 -1 0; 0 1 1 0; 0 -1 1 0; 0 1 0 -1], applied to rows, then to columns.
void input_tiles_plain(float* v, int64_t ldk, const float* plane, const Plan& p) {
  for (int64_t th = 0; th < p.TH; ++th)
    for (int64_t tw = 0; tw < p.TW; ++tw) {
      const float* d = plane + 2 * th * p.Wq + 2 * tw;
      const int64_t W = p.Wq;
      float u[4][4];
      for (int j = 0; j < 4; ++j) {
        u[0][j] = d[j] - d[2 * W + j];
        u[1][j] = d[W + j] + d[2 * W + j];
        u[2][j] = d[2 * W + j] - d[W + j];
        u[3][j] = d[W + j] - d[3 * W + j];
      }
      float* o = v + th * p.TW + tw;
      for (int i = 0; i < 4; ++i) {
        o[(4 * i + 0) * ldk] = u[i][0] - u[i][2];
        o[(4 * i + 1) * ldk] = u[i][1] + u[i][2];
        o[(4 * i + 2) * ldk] = u[i][2] - u[i][1];
        o[(4 * i + 3) * ldk] = u[i][1] - u[i][3];
      }
    }
}

// One output plane y (OH, OW) = A^T m A + bias for every tile, m[k] at m + k * ldk. A^T = [1 1 1 0; 0 1 -1 -1].
void output_tiles_plain(float* y, const float* m, int64_t ldk, float bias, const ConvGeom& g, const Plan& p) {
  for (int64_t th = 0; th < p.TH; ++th)
    for (int64_t tw = 0; tw < p.TW; ++tw) {
      const float* q = m + th * p.TW + tw;
      float s[4][2];
      for (int i = 0; i < 4; ++i) {
        const float a = q[(4 * i) * ldk], b = q[(4 * i + 1) * ldk], c = q[(4 * i + 2) * ldk], d = q[(4 * i + 3) * ldk];
        s[i][0] = a + b + c;
        s[i][1] = b - c - d;
      }
      const int64_t oh = 2 * th;
      for (int j = 0; j < 2; ++j) {
        const int64_t ow = 2 * tw + j;
        if (ow >= g.OW) continue;  // the outside half of the last tile column
        y[oh * g.OW + ow] = s[0][j] + s[1][j] + s[2][j] + bias;
        if (oh + 1 < g.OH) y[(oh + 1) * g.OW + ow] = s[1][j] - s[2][j] - s[3][j] + bias;
      }
    }
}

// Buffers of one thread: padded planes, V[k][c][slot] (16 x C x T), M[k][oc][slot] (16 x OC x T).
void chunk_plain(float* y, const float* x, const float* u, const float* bias, const ConvGeom& g, const Plan& p,
                 int64_t n0, int64_t nb, float* pad, float* v, float* m) {
  for (int64_t b = 0; b < nb; ++b) {
    pad_sample(pad, x + (n0 + b) * g.C * g.H * g.W, g, p);
    for (int64_t c = 0; c < g.C; ++c)
      input_tiles_plain(v + c * p.T + b * p.P, p.VK, pad + c * p.Hq * p.Wq, p);
  }
  // Inside the parallel region OpenBLAS (its OpenMP build) runs each of these single-threaded.
  for (int64_t k = 0; k < 16; ++k)
    cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, int(g.OC), int(nb * p.P), int(g.C), 1.0f,
                u + k * g.OC * g.C, int(g.C), v + k * p.VK, int(p.T), 0.0f, m + k * p.MK, int(p.T));
  const int64_t L = g.OH * g.OW;
  for (int64_t b = 0; b < nb; ++b)
    for (int64_t oc = 0; oc < g.OC; ++oc)
      output_tiles_plain(y + ((n0 + b) * g.OC + oc) * L, m + oc * p.T + b * p.P, p.MK, bias ? bias[oc] : 0.0f,
                         g, p);
}

#if defined(LOOM_X86_KERNELS)
// ---- AVX-512 path: 16 tiles per vector, an 8 x 48 register-blocked GEMM micro-kernel

inline __mmask16 first_lanes(int64_t n) { return __mmask16((1u << std::clamp<int64_t>(n, 0, 16)) - 1); }

// input_tiles_plain for up to 16 tiles of a tile row at once. The four rows of the tiles are combined whole
// (B^T on rows), then each combined row is split into its even and odd columns twice, from column 0 and from
// column 2 (E, O, E1, O1: columns 2tw, 2tw+1, 2tw+2, 2tw+3 of tile tw in lane tw), and combined again
// (B on columns). Loads and stores are unmasked (masked stores are slow on Zen 4: they took most of this
// loop's time): lanes past the last tile read the next row or kSlack, and their values land in the slots of
// the next tile row or sample, written afterwards, or in the 16 spare slots at the end of each row of V.
LOOM_TARGET_AVX512 void input_tiles_avx512(float* v, int64_t ldk, const float* plane, const Plan& p) {
  const __m512i ev = _mm512_setr_epi32(0, 2, 4, 6, 8, 10, 12, 14, 16, 18, 20, 22, 24, 26, 28, 30);
  const __m512i od = _mm512_setr_epi32(1, 3, 5, 7, 9, 11, 13, 15, 17, 19, 21, 23, 25, 27, 29, 31);
  for (int64_t th = 0; th < p.TH; ++th)
    for (int64_t tw0 = 0; tw0 < p.TW; tw0 += 16) {
      const float* r = plane + 2 * th * p.Wq + 2 * tw0;
      __m512 x[4][4];  // [row][columns 0-15, 16-31, 2-17, 18-33]
      for (int i = 0; i < 4; ++i) {
        const float* ri = r + i * p.Wq;
        x[i][0] = _mm512_loadu_ps(ri);
        x[i][1] = _mm512_loadu_ps(ri + 16);
        x[i][2] = _mm512_loadu_ps(ri + 2);
        x[i][3] = _mm512_loadu_ps(ri + 18);
      }
      __m512 u[4][4];
      for (int q = 0; q < 4; ++q) {
        u[0][q] = _mm512_sub_ps(x[0][q], x[2][q]);
        u[1][q] = _mm512_add_ps(x[1][q], x[2][q]);
        u[2][q] = _mm512_sub_ps(x[2][q], x[1][q]);
        u[3][q] = _mm512_sub_ps(x[1][q], x[3][q]);
      }
      float* o = v + th * p.TW + tw0;
      for (int i = 0; i < 4; ++i) {
        const __m512 E = _mm512_permutex2var_ps(u[i][0], ev, u[i][1]), O = _mm512_permutex2var_ps(u[i][0], od, u[i][1]);
        const __m512 E1 = _mm512_permutex2var_ps(u[i][2], ev, u[i][3]), O1 = _mm512_permutex2var_ps(u[i][2], od, u[i][3]);
        _mm512_storeu_ps(o + (4 * i + 0) * ldk, _mm512_sub_ps(E, E1));
        _mm512_storeu_ps(o + (4 * i + 1) * ldk, _mm512_add_ps(O, E1));
        _mm512_storeu_ps(o + (4 * i + 2) * ldk, _mm512_sub_ps(E1, O));
        _mm512_storeu_ps(o + (4 * i + 3) * ldk, _mm512_sub_ps(O, O1));
      }
    }
}

// m[r][0, n) (row pitch ldm, n <= 48) = sum over c < C of a[c][r] * v[c][0, n) (row pitch ldv), r < 8.
// The 24 accumulators are named variables, as in conv_direct.cpp (GCC kept an array of them on the stack).
LOOM_TARGET_AVX512 void gemm_tile_avx512(const float* a, const float* v, int64_t C, int64_t ldv, float* m,
                                         int64_t ldm, int64_t n) {
  const __mmask16 m0 = first_lanes(n), m1 = first_lanes(n - 16), m2 = first_lanes(n - 32);
  __m512 c00 = _mm512_setzero_ps(), c01 = c00, c02 = c00, c10 = c00, c11 = c00, c12 = c00, c20 = c00, c21 = c00,
         c22 = c00, c30 = c00, c31 = c00, c32 = c00, c40 = c00, c41 = c00, c42 = c00, c50 = c00, c51 = c00, c52 = c00,
         c60 = c00, c61 = c00, c62 = c00, c70 = c00, c71 = c00, c72 = c00;
  for (int64_t c = 0; c < C; ++c, a += kRows) {
    const float* s = v + c * ldv;
    const __m512 x0 = _mm512_maskz_loadu_ps(m0, s), x1 = _mm512_maskz_loadu_ps(m1, s + 16),
                 x2 = _mm512_maskz_loadu_ps(m2, s + 32);
    __m512 b = _mm512_set1_ps(a[0]);
    c00 = _mm512_fmadd_ps(b, x0, c00), c01 = _mm512_fmadd_ps(b, x1, c01), c02 = _mm512_fmadd_ps(b, x2, c02);
    b = _mm512_set1_ps(a[1]);
    c10 = _mm512_fmadd_ps(b, x0, c10), c11 = _mm512_fmadd_ps(b, x1, c11), c12 = _mm512_fmadd_ps(b, x2, c12);
    b = _mm512_set1_ps(a[2]);
    c20 = _mm512_fmadd_ps(b, x0, c20), c21 = _mm512_fmadd_ps(b, x1, c21), c22 = _mm512_fmadd_ps(b, x2, c22);
    b = _mm512_set1_ps(a[3]);
    c30 = _mm512_fmadd_ps(b, x0, c30), c31 = _mm512_fmadd_ps(b, x1, c31), c32 = _mm512_fmadd_ps(b, x2, c32);
    b = _mm512_set1_ps(a[4]);
    c40 = _mm512_fmadd_ps(b, x0, c40), c41 = _mm512_fmadd_ps(b, x1, c41), c42 = _mm512_fmadd_ps(b, x2, c42);
    b = _mm512_set1_ps(a[5]);
    c50 = _mm512_fmadd_ps(b, x0, c50), c51 = _mm512_fmadd_ps(b, x1, c51), c52 = _mm512_fmadd_ps(b, x2, c52);
    b = _mm512_set1_ps(a[6]);
    c60 = _mm512_fmadd_ps(b, x0, c60), c61 = _mm512_fmadd_ps(b, x1, c61), c62 = _mm512_fmadd_ps(b, x2, c62);
    b = _mm512_set1_ps(a[7]);
    c70 = _mm512_fmadd_ps(b, x0, c70), c71 = _mm512_fmadd_ps(b, x1, c71), c72 = _mm512_fmadd_ps(b, x2, c72);
  }
  const __m512 rows[kRows][kVecs] = {{c00, c01, c02}, {c10, c11, c12}, {c20, c21, c22}, {c30, c31, c32},
                                     {c40, c41, c42}, {c50, c51, c52}, {c60, c61, c62}, {c70, c71, c72}};
  for (int r = 0; r < kRows; ++r) {
    float* o = m + r * ldm;
    if (n >= 16 * kVecs) {  // a full tile: plain stores (masked ones are slow on Zen 4)
      _mm512_storeu_ps(o, rows[r][0]);
      _mm512_storeu_ps(o + 16, rows[r][1]);
      _mm512_storeu_ps(o + 32, rows[r][2]);
    } else {
      _mm512_mask_storeu_ps(o, m0, rows[r][0]);
      _mm512_mask_storeu_ps(o + 16, m1, rows[r][1]);
      _mm512_mask_storeu_ps(o + 32, m2, rows[r][2]);
    }
  }
}

// gemm_tile_avx512 for the last tiles of a chunk, n <= 16 * V <= 32: a narrower tile, so a chunk of 98 slots
// costs 112 lanes of FMAs, not 144. 8 or 16 accumulators leave GCC enough registers to keep the array in them.
template <int V>
LOOM_TARGET_AVX512 void gemm_edge_avx512(const float* a, const float* v, int64_t C, int64_t ldv, float* m,
                                         int64_t ldm, int64_t n) {
  __mmask16 mk[V];
  __m512 acc[kRows][V];
  for (int j = 0; j < V; ++j) mk[j] = first_lanes(n - 16 * j);
  for (int r = 0; r < kRows; ++r)
    for (int j = 0; j < V; ++j) acc[r][j] = _mm512_setzero_ps();
  for (int64_t c = 0; c < C; ++c, a += kRows) {
    __m512 x[V];
    for (int j = 0; j < V; ++j) x[j] = _mm512_maskz_loadu_ps(mk[j], v + c * ldv + 16 * j);
    for (int r = 0; r < kRows; ++r) {
      const __m512 b = _mm512_set1_ps(a[r]);
      for (int j = 0; j < V; ++j) acc[r][j] = _mm512_fmadd_ps(b, x[j], acc[r][j]);
    }
  }
  for (int r = 0; r < kRows; ++r)
    for (int j = 0; j < V; ++j) _mm512_mask_storeu_ps(m + r * ldm + 16 * j, mk[j], acc[r][j]);
}

// n <= 16 output values at y, the first store of a row (first) or a later one. A plain store (masked ones are
// slow on Zen 4) when all 16 lanes are values, or, for a row's first store, when the plane has room for 16:
// the lanes past the row's end then land in the rest of this row or the next, both written afterwards. Masked
// otherwise: a later block's spill would reach the next row's start, already written, and at the plane's end
// the next plane may be written already.
LOOM_TARGET_AVX512 inline void store_row_avx512(float* y, int64_t n, int64_t room, bool first, __m512 v) {
  if (n >= 16 || (first && room >= 16)) _mm512_storeu_ps(y, v);
  else _mm512_mask_storeu_ps(y, first_lanes(n), v);
}

// output_tiles_plain for up to 16 tiles of a tile row at once: the two output values of each tile row are
// interleaved back into pixel order (lane tw of y_i0, y_i1 -> columns 2tw, 2tw+1).
LOOM_TARGET_AVX512 void output_tiles_avx512(float* y, const float* m, int64_t ldk, float bias, const ConvGeom& g,
                                            const Plan& p) {
  const __m512i lo = _mm512_setr_epi32(0, 16, 1, 17, 2, 18, 3, 19, 4, 20, 5, 21, 6, 22, 7, 23);
  const __m512i hi = _mm512_setr_epi32(8, 24, 9, 25, 10, 26, 11, 27, 12, 28, 13, 29, 14, 30, 15, 31);
  const __m512 bv = _mm512_set1_ps(bias);
  for (int64_t th = 0; th < p.TH; ++th)
    for (int64_t tw0 = 0; tw0 < p.TW; tw0 += 16) {
      const __mmask16 mk = first_lanes(p.TW - tw0);
      const float* q = m + th * p.TW + tw0;
      __m512 s[4][2];
      for (int i = 0; i < 4; ++i) {
        const __m512 a = _mm512_maskz_loadu_ps(mk, q + (4 * i) * ldk), b = _mm512_maskz_loadu_ps(mk, q + (4 * i + 1) * ldk);
        const __m512 c = _mm512_maskz_loadu_ps(mk, q + (4 * i + 2) * ldk), d = _mm512_maskz_loadu_ps(mk, q + (4 * i + 3) * ldk);
        s[i][0] = _mm512_add_ps(_mm512_add_ps(a, b), c);
        s[i][1] = _mm512_sub_ps(_mm512_sub_ps(b, c), d);
      }
      const int64_t left = g.OW - 2 * tw0, at = 2 * th * g.OW + 2 * tw0, room = g.OH * g.OW - at;
      float* row = y + at;
      const __m512 y00 = _mm512_add_ps(_mm512_add_ps(_mm512_add_ps(s[0][0], s[1][0]), s[2][0]), bv);
      const __m512 y01 = _mm512_add_ps(_mm512_add_ps(_mm512_add_ps(s[0][1], s[1][1]), s[2][1]), bv);
      const bool first = tw0 == 0;
      store_row_avx512(row, std::min<int64_t>(left, 16), room, first, _mm512_permutex2var_ps(y00, lo, y01));
      if (left > 16)
        store_row_avx512(row + 16, std::min<int64_t>(left - 16, 16), room - 16, first,
                         _mm512_permutex2var_ps(y00, hi, y01));
      if (2 * th + 1 >= g.OH) continue;  // the outside half of the last tile row
      const __m512 y10 = _mm512_add_ps(_mm512_sub_ps(_mm512_sub_ps(s[1][0], s[2][0]), s[3][0]), bv);
      const __m512 y11 = _mm512_add_ps(_mm512_sub_ps(_mm512_sub_ps(s[1][1], s[2][1]), s[3][1]), bv);
      store_row_avx512(row + g.OW, std::min<int64_t>(left, 16), room - g.OW, first,
                       _mm512_permutex2var_ps(y10, lo, y11));
      if (left > 16)
        store_row_avx512(row + g.OW + 16, std::min<int64_t>(left - 16, 16), room - g.OW - 16, first,
                         _mm512_permutex2var_ps(y10, hi, y11));
    }
}

// Buffers of one thread: padded planes (+ kSlack), V[k][c][slot] (16 x C x T), M[k][r][slot] for one block of
// kRows output channels (16 x 8 x T). ua[k][ocb][c][r] = U[k][ocb * 8 + r][c], zero past OC.
LOOM_TARGET_AVX512 void chunk_avx512(float* y, const float* x, const float* ua, const float* bias, const ConvGeom& g,
                                     const Plan& p, int64_t n0, int64_t nb, float* pad, float* v, float* m) {
  for (int64_t b = 0; b < nb; ++b) {
    pad_sample(pad, x + (n0 + b) * g.C * g.H * g.W, g, p);
    for (int64_t c = 0; c < g.C; ++c)
      input_tiles_avx512(v + c * p.T + b * p.P, p.VK, pad + c * p.Hq * p.Wq, p);
  }
  const int64_t n = nb * p.P, L = g.OH * g.OW;
  for (int64_t ocb = 0; ocb < p.OCB; ++ocb) {
    for (int64_t k = 0; k < 16; ++k) {
      const float* a = ua + (k * p.OCB + ocb) * g.C * kRows;
      const float* vk = v + k * p.VK;
      float* mk = m + k * p.MK;
      int64_t t0 = 0;
      for (; n - t0 > 32; t0 += 16 * kVecs) gemm_tile_avx512(a, vk + t0, g.C, p.T, mk + t0, p.T, n - t0);
      if (n - t0 > 16) gemm_edge_avx512<2>(a, vk + t0, g.C, p.T, mk + t0, p.T, n - t0);
      else if (n > t0) gemm_edge_avx512<1>(a, vk + t0, g.C, p.T, mk + t0, p.T, n - t0);
    }
    const int64_t rows = std::min<int64_t>(kRows, g.OC - ocb * kRows);
    for (int64_t r = 0; r < rows; ++r) {
      const int64_t oc = ocb * kRows + r;
      for (int64_t b = 0; b < nb; ++b)
        output_tiles_avx512(y + ((n0 + b) * g.OC + oc) * L, m + r * p.T + b * p.P, p.MK,
                            bias ? bias[oc] : 0.0f, g, p);
    }
  }
}
#endif

}  // namespace

bool conv_winograd_supports(const ConvGeom& g) {
  if (g.KH != 3 || g.KW != 3 || g.sh != 1 || g.sw != 1 || g.dh != 1 || g.dw != 1 || g.groups != 1) return false;
  if (g.N < 0 || g.C < 1 || g.OC < 1 || g.OH < 1 || g.OW < 1 || g.ph < 0 || g.pw < 0) return false;
  if (g.OH != g.H + 2 * g.ph - 2 || g.OW != g.W + 2 * g.pw - 2) return false;
  const int64_t TH = (g.OH + 1) / 2, TW = (g.OW + 1) / 2;
  return 16 * g.C * TH * TW <= kMaxChunkFloats && g.C * (2 * TH + 2) * (2 * TW + 2) <= kMaxChunkFloats;
}

bool conv2d_winograd(float* y, const float* x, const float* w, const float* bias, const ConvGeom& g) {
  if (!conv_winograd_supports(g)) return false;
  if (g.N == 0) return true;
  bool wide = false;
#if defined(LOOM_X86_KERNELS)
  wide = has_avx512();
#endif
  const Plan p = make_plan(g, wide);
  const int64_t chunks = (g.N + p.B - 1) / p.B, work = g.N * p.P * 16 * g.C * g.OC;
  const int threads = chunks > 1 && work >= kParallelGrain ? int(std::min<int64_t>(chunks, get_num_threads())) : 1;
  // Scratch from loom's caching allocator, not std::vector: fresh pages on every call (the chunk buffers are
  // past malloc's mmap threshold) cost a fifth of the time in page faults. Per thread: padded planes (+
  // kSlack), V[k][c][slot] (16 x C x T), M (16 x OC x T plain; 16 x 8 x T for one block of output channels).
  const int64_t nu = 16 * (wide ? p.OCB * kRows : g.OC) * g.C;
  const int64_t pad_floats = round16(g.C * p.Hq * p.Wq + kSlack), v_floats = 16 * p.VK;
  const int64_t m_floats = 16 * p.MK, per = pad_floats + v_floats + m_floats;
  Tensor scratch = make_tensor({round16(nu) + threads * per}, DType::f32);
  float* u = scratch.data<float>();
  transform_weights(u, w, g.OC, g.C, wide);
#pragma omp parallel num_threads(threads) if (threads > 1)
  {
    float* pad = u + round16(nu) + omp_get_thread_num() * per;
    float* v = pad + pad_floats;
    float* m = v + v_floats;
    std::fill(pad, pad + pad_floats, 0.0f);  // the borders; V and M are written before they are read
#pragma omp for schedule(static)
    for (int64_t ci = 0; ci < chunks; ++ci) {
      const int64_t n0 = ci * p.B, nb = std::min(p.B, g.N - n0);
#if defined(LOOM_X86_KERNELS)
      if (wide) {
        chunk_avx512(y, x, u, bias, g, p, n0, nb, pad, v, m);
        continue;
      }
#endif
      chunk_plain(y, x, u, bias, g, p, n0, nb, pad, v, m);
    }
  }
  return true;
}

bool conv2d_winograd_input_grad(float* dx, const float* gout, const float* w, const ConvGeom& g) {
  if (g.ph > 2 || g.pw > 2 || !conv_winograd_supports(g)) return false;
  // dx[n, c, ih, iw] = sum over oc, kh, kw of gout[n, oc, ih + ph - kh, iw + pw - kw] * w[oc, c, kh, kw]: a
  // correlation of gout zero-padded by 2 - ph (2 - pw) with w[oc, c, 2 - kh, 2 - kw] as weights (C, OC, 3, 3).
  const ConvGeom t{.N = g.N, .C = g.OC, .H = g.OH, .W = g.OW, .OC = g.C, .KH = 3, .KW = 3, .OH = g.H, .OW = g.W,
                   .ph = 2 - g.ph, .pw = 2 - g.pw};
  if (!conv_winograd_supports(t)) return false;
  std::vector<float> wf(static_cast<size_t>(g.OC * g.C * 9));
  for (int64_t oc = 0; oc < g.OC; ++oc)
    for (int64_t c = 0; c < g.C; ++c)
      for (int64_t k = 0; k < 9; ++k) wf[size_t((c * g.OC + oc) * 9 + 8 - k)] = w[(oc * g.C + c) * 9 + k];
  return conv2d_winograd(dx, gout, wf.data(), nullptr, t);
}

}  // namespace loom::cpu
