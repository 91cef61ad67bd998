// Direct weight gradient for stride-1 convolutions with few taps. With C*KH*KW input taps (9 for a 1->32 3x3
// layer), im2col + GEMM makes dW a product (OC x N*L) * (N*L x 9): its output is tiny, so the time goes to
// the passes around it (gout gathered to (OC, N*L), im2col, both packed by the GEMM) over an activation that
// does not fit L2 (5.5 MB in the seed CNN), not to arithmetic. Here each output row of gout is read once,
// straight from NCHW, and multiplied with the same row of each tap's shifted input window:
//   dw[oc, j] = sum over n, oh, ow of gout[n, oc, oh, ow] * xpad[n, c_j, oh + kh_j*dh, ow + kw_j*dw]
// Two output channels at a time keep 2 x (up to 12) accumulators in registers, the input rows (small, hot in
// L1/L2) loaded once for both; the bias gradient rides along on the first group of taps. Lanes hold float
// sums over one chunk of samples, then go to double per thread, like the bias gradient in conv.cpp.
#include "loom/backend/cpu/conv_wgrad_direct.h"

#include <algorithm>
#include <array>
#include <cstring>
#include <utility>
#include <vector>

#include <omp.h>

#include "loom/backend/cpu/isa.h"
#include "loom/backend/cpu/loop.h"
#include "loom/backend/cpu/max_pool_2x2.h"
#include "loom/backend/cpu/relu_max_pool_2x2.h"
#if defined(LOOM_X86_KERNELS)
#pragma GCC diagnostic ignored "-Wmaybe-uninitialized"  // GCC 12's AVX-512 headers (see qgemm.cpp)
#pragma GCC diagnostic ignored "-Wuninitialized"
#include <immintrin.h>
#endif

namespace loom::cpu {

namespace {
bool g_enabled = true;
}  // namespace

void set_direct_wgrad_enabled(bool on) { g_enabled = on; }

bool conv_direct_wgrad_applies(const ConvGeom& g) {
#if defined(LOOM_X86_KERNELS)
  return g_enabled && has_avx512() && g.groups == 1 && g.sh == 1 && g.sw == 1 && g.OW >= 8 && g.OH >= 1 && g.N >= 1 &&
         ((g.OC <= 32 && g.C * g.KH * g.KW <= 36) || (g.OC <= 16 && g.C * g.KH * g.KW <= 150));
#else
  (void)g;
  return false;
#endif
}

#if defined(LOOM_X86_KERNELS)
namespace {

constexpr int kMaxGroup = 12;                     // taps per pass: 2 x 12 accumulators + 2 bias sums
constexpr int64_t kChunkFloats = int64_t(1) << 15;  // input floats per chunk of samples (128 KB, in L2)
constexpr int64_t kDenseChunkFloats = int64_t(1) << 16;  // rebuilt gout floats per chunk (256 KB, in L2)

struct Rows {
  int64_t OH, OW, Wp;    // output rows and their length; row pitch of the (padded) input
  int64_t gs, xs;        // sample strides of gout (OC*L) and of the input (C*Hp*Wp)
  int64_t nv;            // 16-lane vectors per output row
  __mmask16 last;        // lanes of the last one
};

// Sums over samples [0, ns) of gout rows g0 / g1 (two output channels) times the input windows at off[0..NC):
// adds them to d0 / d1 (and the plain sums of gout to b0 / b1 when `bias`).
template <int NC>
LOOM_TARGET_AVX512 void pair_avx512(const Rows& r, int64_t ns, const float* g0, const float* g1, const float* x,
                                    const int64_t* off, bool bias, double* d0, double* d1, double* b0,
                                    double* b1) {
  __m512 a0[NC], a1[NC];
#pragma GCC unroll 12
  for (int j = 0; j < NC; ++j) a0[j] = a1[j] = _mm512_setzero_ps();
  __m512 s0 = _mm512_setzero_ps(), s1 = s0;
  for (int64_t n = 0; n < ns; ++n) {
    const float* gn0 = g0 + n * r.gs;
    const float* gn1 = g1 + n * r.gs;
    const float* xn = x + n * r.xs;
    for (int64_t oh = 0; oh < r.OH; ++oh) {
      const float* gr0 = gn0 + oh * r.OW;
      const float* gr1 = gn1 + oh * r.OW;
      const float* xr = xn + oh * r.Wp;
      for (int64_t v = 0; v < r.nv; ++v) {
        const __mmask16 m = v + 1 == r.nv ? r.last : __mmask16(0xFFFF);
        const __m512 G0 = _mm512_maskz_loadu_ps(m, gr0 + 16 * v), G1 = _mm512_maskz_loadu_ps(m, gr1 + 16 * v);
#pragma GCC unroll 12
        for (int j = 0; j < NC; ++j) {
          const __m512 X = _mm512_maskz_loadu_ps(m, xr + 16 * v + off[j]);
          a0[j] = _mm512_fmadd_ps(G0, X, a0[j]);
          a1[j] = _mm512_fmadd_ps(G1, X, a1[j]);
        }
        if (bias) s0 = _mm512_add_ps(s0, G0), s1 = _mm512_add_ps(s1, G1);
      }
    }
  }
#pragma GCC unroll 12
  for (int j = 0; j < NC; ++j) {
    d0[j] += double(_mm512_reduce_add_ps(a0[j]));
    d1[j] += double(_mm512_reduce_add_ps(a1[j]));
  }
  if (bias) *b0 += double(_mm512_reduce_add_ps(s0)), *b1 += double(_mm512_reduce_add_ps(s1));
}

using PairFn = void (*)(const Rows&, int64_t, const float*, const float*, const float*, const int64_t*, bool, double*,
                        double*, double*, double*);
template <int... I>
constexpr auto pair_table(std::integer_sequence<int, I...>) {
  return std::array<PairFn, sizeof...(I)>{&pair_avx512<I + 1>...};
}
constexpr auto kPairFns = pair_table(std::make_integer_sequence<int, kMaxGroup>{});

// dw and db over all samples; gout_chunk(n0, ns, buf) returns the gout of samples [n0, n0 + ns) (NCHW). With
// dense_chunk > 0, chunks hold at most that many samples and buf has room for their gout, so a caller can build
// it chunk by chunk in a per-thread buffer instead of reading it from memory; with 0, buf is null.
template <class GoutChunk>
void weight_grad(float* dw, float* db, const float* x, const ConvGeom& g, int64_t dense_chunk, GoutChunk gout_chunk) {
  const int64_t Hp = g.H + 2 * g.ph, Wp = g.W + 2 * g.pw, T = g.KH * g.KW, J = g.C * T, L = g.OH * g.OW;
  const bool padded = g.ph > 0 || g.pw > 0;
  // Tap j = (c, kh, kw) of output pixel (oh, ow) reads the input at oh * Wp + ow + off[j].
  std::vector<int64_t> off(static_cast<size_t>(J));
  for (int64_t c = 0; c < g.C; ++c)
    for (int64_t kh = 0; kh < g.KH; ++kh)
      for (int64_t kw = 0; kw < g.KW; ++kw) off[size_t((c * g.KH + kh) * g.KW + kw)] = c * Hp * Wp + kh * g.dh * Wp + kw * g.dw;
  // Groups of taps of even size, each at most kMaxGroup.
  const int64_t ngroups = (J + kMaxGroup - 1) / kMaxGroup, gsize = (J + ngroups - 1) / ngroups;
  const int64_t nv = (g.OW + 15) / 16;
  const Rows r{.OH = g.OH, .OW = g.OW, .Wp = Wp, .gs = g.OC * L, .xs = g.C * Hp * Wp, .nv = nv,
               .last = __mmask16((1u << (g.OW - 16 * (nv - 1))) - 1)};
  const int64_t chunk =
      std::clamp<int64_t>(dense_chunk > 0 ? std::min(kChunkFloats / r.xs, dense_chunk) : kChunkFloats / r.xs, 1, g.N);
  const int nt = g.N > 1 && g.N * g.OC * L * J >= kParallelGrain * 8 ? std::min<int>(get_num_threads(), int(g.N)) : 1;
  const int64_t per = g.OC * J + g.OC;  // one thread's dw and db sums
  std::vector<double> acc(size_t(nt * per), 0.0);
#pragma omp parallel num_threads(nt) if (nt > 1)
  {
    const int t = nt > 1 ? omp_get_thread_num() : 0;
    double* dacc = acc.data() + t * per;
    double* bacc = dacc + g.OC * J;
    std::vector<float> pad(padded ? size_t(chunk * r.xs) : 0, 0.0f);  // borders stay zero
    std::vector<float> buf(dense_chunk > 0 ? size_t(chunk * r.gs) : 0);
    std::vector<double> spare(size_t(kMaxGroup + 1));                 // the missing partner of an odd OC
    const int64_t begin = g.N * t / nt, end = g.N * (t + 1) / nt;
    for (int64_t n0 = begin; n0 < end; n0 += chunk) {
      const int64_t ns = std::min(chunk, end - n0);
      const float* src = x + n0 * g.C * g.H * g.W;
      if (padded) {
        for (int64_t s = 0; s < ns * g.C; ++s)
          for (int64_t h = 0; h < g.H; ++h)
            std::memcpy(pad.data() + s * Hp * Wp + (h + g.ph) * Wp + g.pw, src + (s * g.H + h) * g.W,
                        size_t(g.W) * sizeof(float));
        src = pad.data();
      }
      const float* gn = gout_chunk(n0, ns, dense_chunk > 0 ? buf.data() : nullptr);
      for (int64_t oc = 0; oc < g.OC; oc += 2) {
        const bool two = oc + 1 < g.OC;
        const float* g0 = gn + oc * L;
        const float* g1 = two ? g0 + L : g0;
        for (int64_t j0 = 0; j0 < J; j0 += gsize) {
          const int64_t nc = std::min(gsize, J - j0);
          double* d1 = two ? dacc + (oc + 1) * J + j0 : spare.data();
          double* b1 = two ? bacc + oc + 1 : spare.data() + kMaxGroup;
          kPairFns[size_t(nc - 1)](r, ns, g0, g1, src, off.data() + j0, db && j0 == 0, dacc + oc * J + j0, d1,
                                   bacc + oc, b1);
        }
      }
    }
  }
  for (int64_t i = 0; i < g.OC * J; ++i) {
    double s = 0;
    for (int t = 0; t < nt; ++t) s += acc[size_t(t * per + i)];
    if (dw) dw[i] = float(s);
  }
  if (db)
    for (int64_t oc = 0; oc < g.OC; ++oc) {
      double s = 0;
      for (int t = 0; t < nt; ++t) s += acc[size_t(t * per + g.OC * J + oc)];
      db[oc] = float(s);
    }
}

}  // namespace

bool conv2d_direct_weight_grad(float* dw, float* db, const float* gout, const float* x, const ConvGeom& g) {
  if (!conv_direct_wgrad_applies(g) || (!dw && !db)) return false;
  weight_grad(dw, db, x, g, 0, [&](int64_t n0, int64_t, float*) { return gout + n0 * g.OC * g.OH * g.OW; });
  return true;
}

bool conv2d_direct_weight_grad_relu_max_pool(float* dw, float* db, const float* gy, const uint8_t* taps,
                                             const float* x, const ConvGeom& g, const PoolGeom& pg) {
  if (!conv_direct_wgrad_applies(g) || (!dw && !db) || !is_max_pool_2x2(pg) || pg.N != g.N || pg.C != g.OC ||
      pg.H != g.OH || pg.W != g.OW)
    return false;
  const int64_t L = g.OH * g.OW, PL = pg.OH * pg.OW;
  const int64_t dense_chunk = std::max<int64_t>(1, kDenseChunkFloats / (g.OC * L));
  weight_grad(dw, db, x, g, dense_chunk, [&](int64_t n0, int64_t ns, float* buf) {
    PoolGeom some = pg;
    some.N = ns;
    relu_max_pool2d_2x2_backward(buf, gy + n0 * g.OC * PL, taps + n0 * g.OC * PL, some);
    return static_cast<const float*>(buf);
  });
  return true;
}

#else

bool conv2d_direct_weight_grad(float*, float*, const float*, const float*, const ConvGeom&) { return false; }
bool conv2d_direct_weight_grad_relu_max_pool(float*, float*, const float*, const uint8_t*, const float*, const ConvGeom&,
                                             const PoolGeom&) {
  return false;
}

#endif

}  // namespace loom::cpu
