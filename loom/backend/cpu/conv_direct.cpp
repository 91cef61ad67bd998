// Direct convolution for stride 1 on small planes. The trick: with stride 1, output pixel (oh, ow) reads
// tap (kh, kw) at input offset (oh + kh*dh) * Wp + (ow + kw*dw) of the (padded) plane, that is p + off[t]
// with p = oh * Wp + ow. Computing outputs on the input's row pitch Wp (columns ow >= OW are computed and
// thrown away) makes every tap a *contiguous* shifted view of the input plane, so
//   out[m, p] = sum over channels i and taps t of a[m, i, t] * plane_i[p + off[t]]
// is a GEMM whose B operand is read straight from the input: no im2col (9x the input for 3x3) and no
// packing. The micro-kernel holds 8 output channels x 48 pixels in 24 AVX-512 accumulators and per
// (channel, tap) loads 3 input vectors and broadcasts 8 weights. For W2's 32->64 3x3 layer on 13x13 maps
// the thrown-away columns cost 2/13 of the lanes; im2col + OpenBLAS spent more than that on building,
// packing and scattering. Only the forward is direct: the input gradient in the same form (a correlation
// of the zero-padded output gradient with the flipped weights) measured slower than im2col + GEMM, its
// lanes 70% useful and its gradient planes overflowing L1 (docs/performance.md has the figures).
#include "loom/backend/cpu/conv_direct.h"

#include <algorithm>
#include <cstring>
#include <vector>

#include "loom/backend/cpu/isa.h"
#include "loom/backend/cpu/max_pool_2x2.h"
#include "loom/backend/cpu/relu_max_pool_2x2.h"
#if defined(LOOM_X86_KERNELS)
#include <immintrin.h>
#endif

#include "loom/backend/cpu/loop.h"

namespace loom::cpu {

namespace {
// One sample's (padded) input planes and its output on the padded pitch stay within L2 at this size.
constexpr int64_t kMaxSampleFloats = int64_t(1) << 16;
}  // namespace

bool conv_direct_applies(const ConvGeom& g) {
#if defined(LOOM_X86_KERNELS)
  if (!has_avx512()) return false;
  const int64_t Hp = g.H + 2 * g.ph, Wp = g.W + 2 * g.pw;  // padded input
  return g.groups == 1 && g.sh == 1 && g.sw == 1 && g.KH * g.KW > 1 && 2 * g.OW >= Wp &&
         g.C * Hp * Wp <= kMaxSampleFloats && g.OC * Hp * Wp <= kMaxSampleFloats;
#else
  (void)g;
  return false;
#endif
}

#if defined(LOOM_X86_KERNELS)
namespace {

constexpr int kRows = 8;  // output rows (channels) per micro-tile
constexpr int kVecs = 3;  // 16-pixel vectors per micro-tile

// out[m, p] (row pitch ldo) = sum over i < I, t < T of a[m, i, t] * src[i * ps + off[t] + p], p < P.
// `a` is packed by blocks of kRows rows: block b holds I*T groups of kRows values (zero past row M).
struct Shifted {
  int64_t M, I, T, ps, P, ldo;
  const float* a;
  const int64_t* off;
};

// One micro-tile: rows [8*mb, 8*mb + 8) x pixels [p0, p0 + 48). The 24 accumulators are named variables
// (GCC kept an array of them on the stack); vectors past P have an all-zero mask, so they read nothing.
LOOM_TARGET_AVX512 void tile_avx512(const Shifted& q, const float* src, float* out, int64_t mb, int64_t p0) {
  __mmask16 mk[kVecs];
  for (int v = 0; v < kVecs; ++v) {
    const int64_t n = std::clamp<int64_t>(q.P - p0 - 16 * v, 0, 16);
    mk[v] = __mmask16((1u << n) - 1);  // lanes past P are neither read nor written
  }
  const __mmask16 m0 = mk[0], m1 = mk[1], m2 = mk[2];
  __m512 c00 = _mm512_setzero_ps(), c01 = c00, c02 = c00, c10 = c00, c11 = c00, c12 = c00, c20 = c00, c21 = c00,
         c22 = c00, c30 = c00, c31 = c00, c32 = c00, c40 = c00, c41 = c00, c42 = c00, c50 = c00, c51 = c00, c52 = c00,
         c60 = c00, c61 = c00, c62 = c00, c70 = c00, c71 = c00, c72 = c00;
  const float* ak = q.a + mb * q.I * q.T * kRows;
  for (int64_t i = 0; i < q.I; ++i) {
    const float* s = src + i * q.ps + p0;
    for (int64_t t = 0; t < q.T; ++t, ak += kRows) {
      const float* st = s + q.off[t];
      const __m512 x0 = _mm512_maskz_loadu_ps(m0, st), x1 = _mm512_maskz_loadu_ps(m1, st + 16),
                   x2 = _mm512_maskz_loadu_ps(m2, st + 32);
      __m512 b = _mm512_set1_ps(ak[0]);
      c00 = _mm512_fmadd_ps(b, x0, c00), c01 = _mm512_fmadd_ps(b, x1, c01), c02 = _mm512_fmadd_ps(b, x2, c02);
      b = _mm512_set1_ps(ak[1]);
      c10 = _mm512_fmadd_ps(b, x0, c10), c11 = _mm512_fmadd_ps(b, x1, c11), c12 = _mm512_fmadd_ps(b, x2, c12);
      b = _mm512_set1_ps(ak[2]);
      c20 = _mm512_fmadd_ps(b, x0, c20), c21 = _mm512_fmadd_ps(b, x1, c21), c22 = _mm512_fmadd_ps(b, x2, c22);
      b = _mm512_set1_ps(ak[3]);
      c30 = _mm512_fmadd_ps(b, x0, c30), c31 = _mm512_fmadd_ps(b, x1, c31), c32 = _mm512_fmadd_ps(b, x2, c32);
      b = _mm512_set1_ps(ak[4]);
      c40 = _mm512_fmadd_ps(b, x0, c40), c41 = _mm512_fmadd_ps(b, x1, c41), c42 = _mm512_fmadd_ps(b, x2, c42);
      b = _mm512_set1_ps(ak[5]);
      c50 = _mm512_fmadd_ps(b, x0, c50), c51 = _mm512_fmadd_ps(b, x1, c51), c52 = _mm512_fmadd_ps(b, x2, c52);
      b = _mm512_set1_ps(ak[6]);
      c60 = _mm512_fmadd_ps(b, x0, c60), c61 = _mm512_fmadd_ps(b, x1, c61), c62 = _mm512_fmadd_ps(b, x2, c62);
      b = _mm512_set1_ps(ak[7]);
      c70 = _mm512_fmadd_ps(b, x0, c70), c71 = _mm512_fmadd_ps(b, x1, c71), c72 = _mm512_fmadd_ps(b, x2, c72);
    }
  }
  const __m512 rows[kRows][kVecs] = {{c00, c01, c02}, {c10, c11, c12}, {c20, c21, c22}, {c30, c31, c32},
                                     {c40, c41, c42}, {c50, c51, c52}, {c60, c61, c62}, {c70, c71, c72}};
  const int64_t n = std::min<int64_t>(kRows, q.M - mb * kRows);
  for (int64_t r = 0; r < n; ++r) {
    float* o = out + (mb * kRows + r) * q.ldo + p0;
    _mm512_mask_storeu_ps(o, m0, rows[r][0]);
    _mm512_mask_storeu_ps(o + 16, m1, rows[r][1]);
    _mm512_mask_storeu_ps(o + 32, m2, rows[r][2]);
  }
}

LOOM_TARGET_AVX512 void run_avx512(const Shifted& q, const float* src, float* out) {
  for (int64_t mb = 0; mb * kRows < q.M; ++mb)
    for (int64_t p0 = 0; p0 < q.P; p0 += 16 * kVecs) tile_avx512(q, src, out, mb, p0);
}

inline int64_t round16(int64_t n) { return (n + 15) / 16 * 16; }

// Per-thread scratch: a padded copy of the sample's planes (borders zeroed once, interiors rewritten per
// sample), the output on the padded pitch and `extra` floats for the caller's epilogue. Runs
// body(n, pad, obuf, extra) for every sample, samples spread over the threads.
template <class F>
void for_samples(int64_t N, int64_t pad_floats, int64_t out_floats, int64_t extra_floats, int64_t work, F body) {
#pragma omp parallel if (N > 1 && work >= kParallelGrain)
  {
    std::vector<float> pad(size_t(pad_floats), 0.0f), obuf(static_cast<size_t>(out_floats)),
        extra(static_cast<size_t>(extra_floats));
#pragma omp for schedule(static)
    for (int64_t n = 0; n < N; ++n) body(n, pad.data(), obuf.data(), extra.data());
  }
}

// The direct convolution of every sample, then epilogue(n, obuf, pitch, extra): obuf holds sample n's output
// channel oc, row oh at obuf[oc * ldo + oh * pitch + ow] (columns ow >= OW are scratch), without the bias.
template <class E>
void direct_samples(const float* x, const float* w, const ConvGeom& g, int64_t extra_floats, E epilogue) {
  const int64_t Hp = g.H + 2 * g.ph, Wp = g.W + 2 * g.pw, T = g.KH * g.KW, K = g.C * T;
  const bool padded = g.ph > 0 || g.pw > 0;
  const int64_t blocks = (g.OC + kRows - 1) / kRows;
  std::vector<float> a(size_t(blocks * K * kRows), 0.0f);  // a[b][k][r] = w[b*8 + r, k]
  for (int64_t m = 0; m < g.OC; ++m)
    for (int64_t k = 0; k < K; ++k) a[size_t(((m / kRows) * K + k) * kRows + m % kRows)] = w[m * K + k];
  std::vector<int64_t> off(static_cast<size_t>(T));
  for (int64_t kh = 0; kh < g.KH; ++kh)
    for (int64_t kw = 0; kw < g.KW; ++kw) off[size_t(kh * g.KW + kw)] = kh * g.dh * Wp + kw * g.dw;
  const int64_t P = (g.OH - 1) * Wp + g.OW, ldo = round16(P);
  const Shifted q{.M = g.OC, .I = g.C, .T = T, .ps = Hp * Wp, .P = P, .ldo = ldo, .a = a.data(), .off = off.data()};
  const int64_t L = g.OH * g.OW;
  for_samples(g.N, padded ? g.C * Hp * Wp : 0, g.OC * ldo, extra_floats, g.N * g.OC * L * K,
              [&](int64_t n, float* pad, float* obuf, float* extra) {
                const float* xn = x + n * g.C * g.H * g.W;
                const float* src = xn;
                if (padded) {
                  for (int64_t c = 0; c < g.C; ++c)
                    for (int64_t h = 0; h < g.H; ++h)
                      std::memcpy(pad + c * Hp * Wp + (h + g.ph) * Wp + g.pw, xn + (c * g.H + h) * g.W,
                                  size_t(g.W) * sizeof(float));
                  src = pad;
                }
                run_avx512(q, src, obuf);
                epilogue(n, static_cast<const float*>(obuf), ldo, Wp, extra);
              });
}

// dst (OC, OH, OW) = obuf's valid columns + bias.
void add_bias_dense(float* dst, const float* obuf, int64_t ldo, int64_t pitch, const float* bias, const ConvGeom& g) {
  const int64_t L = g.OH * g.OW;
  for (int64_t oc = 0; oc < g.OC; ++oc) {
    const float b = bias ? bias[oc] : 0.0f;
    for (int64_t oh = 0; oh < g.OH; ++oh) {
      const float* s = obuf + oc * ldo + oh * pitch;
      float* d = dst + oc * L + oh * g.OW;
#pragma omp simd
      for (int64_t ow = 0; ow < g.OW; ++ow) d[ow] = s[ow] + b;
    }
  }
}

}  // namespace

bool conv2d_direct(float* y, const float* x, const float* w, const float* bias, const ConvGeom& g) {
  if (!conv_direct_applies(g)) return false;
  const int64_t L = g.OH * g.OW;
  direct_samples(x, w, g, 0, [&](int64_t n, const float* obuf, int64_t ldo, int64_t pitch, float*) {
    add_bias_dense(y + n * g.OC * L, obuf, ldo, pitch, bias, g);
  });
  return true;
}

bool conv2d_direct_relu_max_pool(float* y, uint8_t* taps, const float* x, const float* w, const float* bias,
                                 const ConvGeom& g, const PoolGeom& pg) {
  if (!conv_direct_applies(g) || !is_max_pool_2x2(pg) || pg.N != g.N || pg.C != g.OC || pg.H != g.OH ||
      pg.W != g.OW)
    return false;
  PoolGeom one = pg;  // the pool of one sample
  one.N = 1;
  const int64_t L = g.OH * g.OW, PL = pg.OH * pg.OW;
  direct_samples(x, w, g, g.OC * L, [&](int64_t n, const float* obuf, int64_t ldo, int64_t pitch, float* dense) {
    add_bias_dense(dense, obuf, ldo, pitch, bias, g);  // this sample's activation, hot in L2
    relu_max_pool2d_2x2(y + n * g.OC * PL, taps + n * g.OC * PL, dense, one);
  });
  return true;
}

#else

bool conv2d_direct(float*, const float*, const float*, const float*, const ConvGeom&) { return false; }
bool conv2d_direct_relu_max_pool(float*, uint8_t*, const float*, const float*, const float*, const ConvGeom&,
                                 const PoolGeom&) {
  return false;
}

#endif

}  // namespace loom::cpu
