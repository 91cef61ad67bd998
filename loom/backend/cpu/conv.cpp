// Convolution as im2col + GEMM (OpenBLAS). A chunk of B samples shares one column matrix
//   cols (K, B*L),  K = C/groups * KH * KW rows, one column per output pixel of the B samples (L = OH*OW),
// so the GEMM stays wide even when one sample's output is tiny (11x11 in a small CNN): a per-sample
// (64 x 288) x (288 x 121) product runs far below OpenBLAS's peak, the chunked one near it.
// The forward GEMM yields (OC, B*L), which one pass scatters into NCHW while adding the bias.
// Backward uses the same layout: gout gathered to (OC, B*L); dW += gout_cols x cols^T (one long inner
// dimension); dcols = W^T x gout_cols, then col2im adds the columns back into dx.
// In front of it: Winograd F(2x2, 3x3) (conv_winograd.cpp) for the 3x3 stride-1 float32 shapes where it
// measured faster (forward and dx; the rule below), then the direct forward (conv_direct.cpp).
#include <algorithm>
#include <cstring>
#include <type_traits>
#include <vector>

#include <omp.h>

#include "loom/backend/cpu/conv_direct.h"
#include "loom/backend/cpu/conv_wgrad_direct.h"
#include "loom/backend/cpu/conv_winograd.h"
#include "loom/backend/cpu/cpu_backend.h"
#include "loom/backend/cpu/isa.h"
#if defined(LOOM_X86_KERNELS)
#include <immintrin.h>
#endif
#include "loom/backend/cpu/loop.h"
#include "loom/core/dispatch.h"

namespace loom::cpu {

namespace {

// Two ways to use the cores. With enough samples, each thread takes a contiguous range of samples and
// runs im2col, GEMM and scatter on its own: columns stay in that core's L2 and OpenBLAS (the OpenMP
// build loom links) runs each GEMM single-threaded inside the parallel region, so threads never wait on
// each other. With fewer samples than threads, chunks run one after another with GEMMs and copies
// threaded. Chunk width: enough samples that the GEMM has kMinCols* columns, while the column matrix stays
// within kMaxColBytes* (it is written by im2col and read straight back by the GEMM).
constexpr int64_t kMinColsPerThread = 512, kMaxColBytesPerThread = 1 << 20;
constexpr int64_t kMinColsShared = 1024, kMaxColBytesShared = 4 << 20;
constexpr int64_t kParallelMacs = 1 << 20;

struct Plan {
  int64_t Cg, OCg, K, L, HW;
  bool pointwise;  // 1x1, stride 1, no padding: a sample's input plane already is its column matrix
  int threads;     // > 1: samples split across threads; 1: threaded GEMMs on this thread
  int64_t B;       // samples per chunk
  bool wide;       // im2col/col2im rows with AVX-512 masked accesses (cpu::has_avx512(), asked once a call)
};

Plan make_plan(const ConvGeom& g, size_t elem) {
  Plan p;
  p.Cg = g.C / g.groups;
  p.OCg = g.OC / g.groups;
  p.K = p.Cg * g.KH * g.KW;
  p.L = g.OH * g.OW;
  p.HW = g.H * g.W;
  p.pointwise = g.KH == 1 && g.KW == 1 && g.sh == 1 && g.sw == 1 && g.ph == 0 && g.pw == 0;
  // Threads only pay off above ~kParallelMacs multiply-adds; below that a parallel region costs more.
  const int64_t nt = get_num_threads(), macs = g.N * p.L * p.K * g.OC;
  p.threads = nt > 1 && macs >= kParallelMacs && (g.N == nt || g.N >= 2 * nt) ? int(nt) : 1;
  const int64_t per = (g.N + p.threads - 1) / p.threads;  // samples per thread
  const int64_t min_cols = p.threads > 1 ? kMinColsPerThread : kMinColsShared;
  const int64_t max_bytes = p.threads > 1 ? kMaxColBytesPerThread : kMaxColBytesShared;
  const int64_t want = (min_cols + p.L - 1) / std::max<int64_t>(p.L, 1);
  const int64_t cap = max_bytes / int64_t(elem) / std::max<int64_t>(p.K * p.L, 1);
  const int64_t bmax = std::clamp<int64_t>(std::min(want, cap), 1, std::max<int64_t>(per, 1));
  const int64_t chunks = (per + bmax - 1) / bmax;  // then even out the chunks
  p.B = chunks > 0 ? (per + chunks - 1) / chunks : 1;
  p.wide = has_avx512();
  return p;
}

// Along one axis: the outputs [lo, hi) whose tap k reads inside the input [0, size); the others read
// padding. The input index of output o is o * stride + off.
struct Span {
  int64_t lo, hi, off;
};
Span valid_span(int64_t size, int64_t out, int64_t stride, int64_t pad, int64_t dil, int64_t k) {
  const int64_t off = k * dil - pad;
  const int64_t lo = std::min(off >= 0 ? 0 : (-off + stride - 1) / stride, out);
  const int64_t hi = size - off <= 0 ? 0 : (size - off + stride - 1) / stride;
  return {lo, std::clamp(hi, lo, out), off};
}

#if defined(LOOM_X86_KERNELS)
// One AVX-512 register of T with masked loads and stores. Rows here are short (11 pixels for a 13x13
// input): a plain loop would spend them in its scalar remainder, a masked access takes one instruction.
template <class T> struct Avx512Vec;
template <> struct Avx512Vec<float> {
  static constexpr int64_t n = 16;
  using R = __m512;
  LOOM_TARGET_AVX512 static R zero() { return _mm512_setzero_ps(); }
  LOOM_TARGET_AVX512 static R load(uint32_t m, const float* p) { return _mm512_maskz_loadu_ps(__mmask16(m), p); }
  LOOM_TARGET_AVX512 static void store(uint32_t m, float* p, R v) { _mm512_mask_storeu_ps(p, __mmask16(m), v); }
  LOOM_TARGET_AVX512 static R add(R a, R b) { return _mm512_add_ps(a, b); }
};
template <> struct Avx512Vec<double> {
  static constexpr int64_t n = 8;
  using R = __m512d;
  LOOM_TARGET_AVX512 static R zero() { return _mm512_setzero_pd(); }
  LOOM_TARGET_AVX512 static R load(uint32_t m, const double* p) { return _mm512_maskz_loadu_pd(__mmask8(m), p); }
  LOOM_TARGET_AVX512 static void store(uint32_t m, double* p, R v) { _mm512_mask_storeu_pd(p, __mmask8(m), v); }
  LOOM_TARGET_AVX512 static R add(R a, R b) { return _mm512_add_pd(a, b); }
};
// Bits lo..hi-1 set: the lanes [lo, hi) of a vector.
inline uint32_t lanes(int64_t lo, int64_t hi) {
  return uint32_t(((uint64_t(1) << hi) - 1) & ~((uint64_t(1) << lo) - 1));
}

// im2col_tap's rows [r.lo, r.hi) when the row's valid span fits one register: one masked copy per row, all
// with the same mask.
template <class T>
LOOM_TARGET_AVX512 void im2col_rows_avx512(T* dst, const T* plane, const ConvGeom& g, const Span& r, const Span& s,
                                           bool edge) {
  using V = Avx512Vec<T>;
  const uint32_t m = lanes(0, s.hi - s.lo);
  const int64_t base = r.off * g.W + s.lo + s.off;  // input offset of row 0 (may be negative)
  for (int64_t oh = r.lo; oh < r.hi; ++oh) {
    T* d = dst + oh * g.OW;
    if (edge) {
      std::fill(d, d + s.lo, T(0));
      std::fill(d + s.hi, d + g.OW, T(0));
    }
    V::store(m, d + s.lo, V::load(m, plane + (base + oh * g.sh * g.W)));
  }
}
#endif

// One row of the column matrix: dst[oh*OW + ow] = plane[oh*sh - ph + kh*dh, ow*sw - pw + kw*dw], 0 where
// that is padding. Every element is written, so the buffer needs no zero-fill first.
template <class T>
void im2col_tap(T* dst, const T* plane, const ConvGeom& g, int64_t kh, int64_t kw, bool wide) {
  const Span r = valid_span(g.H, g.OH, g.sh, g.ph, g.dh, kh), s = valid_span(g.W, g.OW, g.sw, g.pw, g.dw, kw);
  const bool edge = s.lo > 0 || s.hi < g.OW;
  if (r.lo > 0) std::fill(dst, dst + r.lo * g.OW, T(0));
  if (r.hi < g.OH) std::fill(dst + r.hi * g.OW, dst + g.OH * g.OW, T(0));
#if defined(LOOM_X86_KERNELS)
  if (wide && g.sw == 1 && s.hi - s.lo <= Avx512Vec<T>::n) return im2col_rows_avx512(dst, plane, g, r, s, edge);
#else
  (void)wide;
#endif
  for (int64_t oh = r.lo; oh < r.hi; ++oh) {
    T* d = dst + oh * g.OW;
    const T* row = plane + (oh * g.sh + r.off) * g.W;
    if (edge) {
      std::fill(d, d + s.lo, T(0));
      std::fill(d + s.hi, d + g.OW, T(0));
    }
    if (g.sw == 1) {
      std::copy(row + s.lo + s.off, row + s.hi + s.off, d + s.lo);
    } else {
      for (int64_t ow = s.lo; ow < s.hi; ++ow) d[ow] = row[ow * g.sw + s.off];
    }
  }
}

// The adjoint of im2col for one (sample, channel) plane: dx[ih, iw] = sum over the taps (kh, kw) of the
// column entries that read it. taps[(kh*KW + kw) * ld + l] holds tap (kh, kw) of output pixel l.
#if defined(LOOM_X86_KERNELS)
constexpr int64_t kMaxKW = 32;  // col2im_plane_avx512's mask table

// col2im_plane in gather form, for stride-1 columns and KW <= kMaxKW: each output vector sums its taps in a
// register and is stored once. Adding the taps into the plane one after another instead re-reads rows just
// written with masked stores, which cannot be store-forwarded and stalled this loop for most of its time.
template <class T>
LOOM_TARGET_AVX512 void col2im_plane_avx512(T* plane, const T* taps, int64_t ld, const ConvGeom& g) {
  using V = Avx512Vec<T>;
  uint32_t mask[kMaxKW];
  for (int64_t iw0 = 0; iw0 < g.W; iw0 += V::n) {
    const int64_t n = std::min(V::n, g.W - iw0);
    for (int64_t kw = 0; kw < g.KW; ++kw) {  // lanes whose ow = iw + pw - kw*dw lies in [0, OW)
      const int64_t off = g.pw - kw * g.dw;
      const int64_t lo = std::max<int64_t>(0, -off - iw0), hi = std::min(n, g.OW - off - iw0);
      mask[kw] = lo < hi ? lanes(lo, hi) : 0;
    }
    for (int64_t ih = 0; ih < g.H; ++ih) {
      typename V::R acc = V::zero();
      for (int64_t kh = 0; kh < g.KH; ++kh) {
        const int64_t t = ih + g.ph - kh * g.dh;  // = oh * sh
        if (t < 0 || t % g.sh || t / g.sh >= g.OH) continue;
        const T* row = taps + kh * g.KW * ld + (t / g.sh) * g.OW + iw0 + g.pw;
        for (int64_t kw = 0; kw < g.KW; ++kw)
          if (mask[kw]) acc = V::add(acc, V::load(mask[kw], row + kw * (ld - g.dw)));
      }
      V::store(lanes(0, n), plane + ih * g.W + iw0, acc);
    }
  }
}
#endif

// The adjoint of im2col for one (sample, channel) plane: dx[ih, iw] = sum over the taps (kh, kw) of the
// column entries that read it. taps[(kh*KW + kw) * ld + l] holds tap (kh, kw) of output pixel l.
template <class T>
void col2im_plane(T* plane, const T* taps, int64_t ld, const ConvGeom& g, bool wide) {
#if defined(LOOM_X86_KERNELS)
  if (wide && g.sw == 1 && g.KW <= kMaxKW) return col2im_plane_avx512(plane, taps, ld, g);
#else
  (void)wide;
#endif
  std::fill(plane, plane + g.H * g.W, T(0));
  for (int64_t kh = 0; kh < g.KH; ++kh) {
    const Span r = valid_span(g.H, g.OH, g.sh, g.ph, g.dh, kh);
    for (int64_t kw = 0; kw < g.KW; ++kw) {
      const Span s = valid_span(g.W, g.OW, g.sw, g.pw, g.dw, kw);
      const T* src = taps + (kh * g.KW + kw) * ld;
      for (int64_t oh = r.lo; oh < r.hi; ++oh) {
        T* row = plane + (oh * g.sh + r.off) * g.W;
        const T* sr = src + oh * g.OW;
        for (int64_t ow = s.lo; ow < s.hi; ++ow) row[ow * g.sw + s.off] += sr[ow];
      }
    }
  }
}

// cols[k, b*L + l] for the B samples' Cg channels starting at x (samples C*HW apart), k = (c, kh, kw).
template <class T>
void im2col(T* cols, const T* x, int64_t B, const ConvGeom& g, const Plan& p, bool par) {
  const int64_t ld = B * p.L, KK = g.KH * g.KW;
#pragma omp parallel for collapse(2) schedule(static) if (par && p.K * ld >= kParallelGrain)
  for (int64_t k = 0; k < p.K; ++k)
    for (int64_t b = 0; b < B; ++b)
      im2col_tap(cols + k * ld + b * p.L, x + b * g.C * p.HW + (k / KK) * p.HW, g, k / g.KW % g.KH, k % g.KW, p.wide);
}

// dx[b, c] from the column gradients. Each task owns one (sample, channel) plane, so threads never write
// the same memory.
template <class T>
void col2im(T* dx, const T* cols, int64_t B, const ConvGeom& g, const Plan& p, bool par) {
  const int64_t ld = B * p.L, KK = g.KH * g.KW;
#pragma omp parallel for collapse(2) schedule(static) if (par && p.K * ld >= kParallelGrain)
  for (int64_t b = 0; b < B; ++b)
    for (int64_t c = 0; c < p.Cg; ++c)
      col2im_plane(dx + b * g.C * p.HW + c * p.HW, cols + c * KK * ld + b * p.L, ld, g, p.wide);
}

// y[b, oc, :] = obuf[oc, b*L : (b+1)*L] + bias[oc]
template <class T>
void scatter_out(T* y, const T* obuf, const T* bias, int64_t B, int64_t OC, int64_t L, bool par) {
#pragma omp parallel for collapse(2) schedule(static) if (par && B * OC * L >= kParallelGrain)
  for (int64_t b = 0; b < B; ++b)
    for (int64_t oc = 0; oc < OC; ++oc) {
      T* dst = y + (b * OC + oc) * L;
      const T* src = obuf + oc * B * L + b * L;
      const T add = bias ? bias[oc] : T(0);
#pragma omp simd
      for (int64_t l = 0; l < L; ++l) dst[l] = src[l] + add;
    }
}

// gbuf[oc, b*L + l] = gout[b, oc, l]
template <class T>
void gather_gout(T* gbuf, const T* gout, int64_t B, int64_t OC, int64_t L, bool par) {
#pragma omp parallel for collapse(2) schedule(static) if (par && B * OC * L >= kParallelGrain)
  for (int64_t b = 0; b < B; ++b)
    for (int64_t oc = 0; oc < OC; ++oc)
      std::memcpy(gbuf + oc * B * L + b * L, gout + (b * OC + oc) * L, size_t(L) * sizeof(T));
}

template <class T>
void gemm(Backend& be, bool ta, bool tb, int64_t M, int64_t N, int64_t K, const T* A, int64_t lda, const T* B,
          int64_t ldb, double beta, T* C, int64_t ldc) {
  be.gemm(ta, tb, M, N, K, 1.0, A, lda, B, ldb, beta, C, ldc, dtype_of<T>::value);
}

// Runs chunk(n0, nb, slot, par) over all samples, split across threads (slot = thread) or in sequence,
// then finish(): with threads, all of them run it after a barrier inside the same parallel region (one
// region per call: on a busy 2-core machine every extra region is another chance to wait a time slice
// for a descheduled thread), so it shares its loops out with orphaned `omp for`.
template <class F, class Fin>
void for_chunks(const ConvGeom& g, const Plan& p, F chunk, Fin finish) {
  if (p.threads == 1) {
    for (int64_t n0 = 0; n0 < g.N; n0 += p.B) chunk(n0, std::min(p.B, g.N - n0), 0, true);
    finish();
    return;
  }
#pragma omp parallel num_threads(p.threads)
  {
    const int t = omp_get_thread_num();
    const int64_t begin = g.N * t / p.threads, end = g.N * (t + 1) / p.threads;
    for (int64_t n0 = begin; n0 < end; n0 += p.B) chunk(n0, std::min(p.B, end - n0), t, false);
#pragma omp barrier
    finish();
  }
}

// Where Winograd F(2x2, 3x3) (conv_winograd.cpp) replaces the direct forward / the im2col + GEMM input
// gradient: the shapes where it measured faster (bench/conv_winograd_bench, one thread, CPU time, best of 30,
// two runs on 2026-12-03 with loom's AVX-512 sgemm under im2col (main at 775ee5d and d6c3d21), batch 64 unless
// noted; time of the kernel it replaces / Winograd's):
//   forward   C->OC on HxW:  32->64 13x13 (W2's conv2) 1.30-1.46x, 16->32 14x14 pad 1 1.26-1.28x, 32->64
//             20x20 pad 1 (batch 16) 1.30-1.56x, 64->128 8x8 pad 1 1.51-1.79x; but 16->16 0.87-0.88x, 8->64
//             0.99-1.00x, 8->16 0.77-0.78x, 32->8 0.68-0.69x, 4->32 0.69-0.70x, 1->32 (W2's conv1) 0.50-0.53x:
//             the transforms cost per input and per output channel while the saving is per pair, so both
//             sides need enough channels.
//   input gradient (dx, a convolution with C output channels, padded by 2 - pad): 16->32 pad 1 1.39-1.45x,
//             32->64 20x20 pad 1 1.49-1.65x, 64->128 pad 1 1.07-1.41x, 16->16 1.16-1.24x, 32->8 1.69-1.90x,
//             32->4 1.90-2.22x; but W2's conv2 (32->64, no padding) 0.97x in both runs, 8->16 0.95-0.99x, 8->64
//             0.68-0.69x, 4->32 0.50-0.51x, 1->32 0.45-0.48x. Without padding its grid grows by 2 pixels per
//             axis (13x13 outputs in 7x7 tiles here), which eats the gain when OC > C leaves im2col little to do.
// Only with AVX-512: the plain path (plain transforms + sgemm) was slower than im2col + GEMM for W2's dx
// (0.81x under LOOM_ISA=baseline) and is kept as the fallback of conv2d_winograd itself, not dispatched.
bool winograd_forward_wins(const ConvGeom& g) {
  return has_avx512() && g.C >= 16 && g.OC >= 32 && conv_winograd_supports(g);
}
bool winograd_input_grad_wins(const ConvGeom& g) {
  return has_avx512() && g.C >= 16 && (g.OC <= g.C || g.ph + g.pw > 0) && conv_winograd_supports(g);
}

template <class T>
void forward(Backend& be, Tensor& out, const Tensor& x, const Tensor& w, const Tensor* bias, const ConvGeom& g) {
  if constexpr (std::is_same_v<T, float>) {  // 3x3 stride 1 with enough channels: Winograd (see above)
    if (winograd_forward_wins(g) &&
        conv2d_winograd(out.data<float>(), x.data<float>(), w.data<float>(), bias ? bias->data<float>() : nullptr, g))
      return;
  }
  if constexpr (std::is_same_v<T, float>) {  // stride-1 float32 on small planes: no im2col (conv_direct.cpp)
    if (conv2d_direct(out.data<float>(), x.data<float>(), w.data<float>(), bias ? bias->data<float>() : nullptr, g))
      return;
  }
  const Plan p = make_plan(g, sizeof(T));
  const T* px = x.data<T>();
  const T* pw = w.data<T>();
  const T* pb = bias ? bias->data<T>() : nullptr;
  T* py = out.data<T>();
  // One scratch allocation per call: per thread a column matrix and a GEMM output, reused by every chunk.
  const int64_t ncols = p.K * p.B * p.L, nout = p.B > 1 ? g.OC * p.B * p.L : 0;
  Tensor scratch = make_tensor({p.threads * (ncols + nout)}, x.dtype());
  for_chunks(g, p, [&](int64_t n0, int64_t nb, int slot, bool par) {
    T* cols = scratch.data<T>() + slot * (ncols + nout);
    T* obuf = cols + ncols;
    const int64_t ld = nb * p.L;
    for (int64_t gi = 0; gi < g.groups; ++gi) {
      const T* xg = px + (n0 * g.C + gi * p.Cg) * p.HW;
      const T* cg = xg;
      if (!(p.pointwise && nb == 1)) {
        im2col(cols, xg, nb, g, p, par);
        cg = cols;
      }
      const T* wg = pw + gi * p.OCg * p.K;
      if (nb == 1) {  // one sample: the GEMM writes straight into its NCHW output
        T* yg = py + (n0 * g.OC + gi * p.OCg) * p.L;
        if (pb)
          for (int64_t oc = 0; oc < p.OCg; ++oc) std::fill(yg + oc * p.L, yg + (oc + 1) * p.L, pb[gi * p.OCg + oc]);
        gemm(be, false, false, p.OCg, p.L, p.K, wg, p.K, cg, p.L, pb ? 1.0 : 0.0, yg, p.L);
      } else {
        gemm(be, false, false, p.OCg, ld, p.K, wg, p.K, cg, ld, 0.0, obuf + gi * p.OCg * ld, ld);
      }
    }
    if (nb > 1) scatter_out(py + n0 * g.OC * p.L, obuf, pb, nb, g.OC, p.L, par);
  }, [] {});
}

// acc[oc] += sum over the nb samples and all pixels of gout[b, oc, :] (per-plane sums vectorised in T).
template <class T>
void add_bias_grad(double* acc, const T* gout, int64_t nb, int64_t OC, int64_t L) {
  for (int64_t b = 0; b < nb; ++b)
    for (int64_t oc = 0; oc < OC; ++oc) {
      const T* src = gout + (b * OC + oc) * L;
      T s = 0;
#pragma omp simd reduction(+ : s)
      for (int64_t l = 0; l < L; ++l) s += src[l];
      acc[oc] += double(s);
    }
}

template <class T>
void backward_im2col(Backend& be, Tensor* dx, Tensor* dw, Tensor* db, const Tensor& gout, const Tensor& x,
                     const Tensor& w, const ConvGeom& g) {
  const Plan p = make_plan(g, sizeof(T));
  const T* pg = gout.data<T>();
  T* pdx = dx ? dx->data<T>() : nullptr;
  T* pdw = dw ? dw->data<T>() : nullptr;
  const T* px = dw ? x.data<T>() : nullptr;  // x is only read for dW and w only for dx
  const T* pw = dx ? w.data<T>() : nullptr;
  // Per thread: a column matrix (input columns for dW, then the column gradients for dx), the gathered
  // gout, and with several threads a private dW; the partials are summed at the end.
  const int64_t ncols = (dx || dw) ? p.K * p.B * p.L : 0, ngout = (dx || dw) && p.B > 1 ? g.OC * p.B * p.L : 0;
  const int64_t nw = dw ? dw->numel() : 0, per = ncols + ngout + (p.threads > 1 ? nw : 0);
  Tensor scratch = make_tensor({p.threads * per}, gout.dtype());
  T* base = scratch.data<T>();
  std::vector<double> db_acc(db ? size_t(p.threads * g.OC) : 0, 0.0);
  std::vector<char> started(size_t(p.threads), 0);
  for_chunks(g, p, [&](int64_t n0, int64_t nb, int slot, bool par) {
    const T* gn = pg + n0 * g.OC * p.L;
    if (db) add_bias_grad(db_acc.data() + slot * g.OC, gn, nb, g.OC, p.L);
    if (!dx && !dw) return;
    T* cols = base + slot * per;
    T* gbuf = cols + ncols;
    T* dw_acc = !dw ? nullptr : p.threads > 1 ? gbuf + ngout : pdw;
    const int64_t ld = nb * p.L;
    const T* gcols = gn;  // with one sample, gout[n] already is (OC, L)
    if (nb > 1) {
      gather_gout(gbuf, gn, nb, g.OC, p.L, par);
      gcols = gbuf;
    }
    const bool direct = p.pointwise && nb == 1;
    const double beta = started[size_t(slot)] ? 1.0 : 0.0;
    started[size_t(slot)] = 1;
    for (int64_t gi = 0; gi < g.groups; ++gi) {
      const T* gg = gcols + gi * p.OCg * ld;
      if (dw_acc) {
        const T* xg = px + (n0 * g.C + gi * p.Cg) * p.HW;
        const T* cg = xg;
        if (!direct) {
          im2col(cols, xg, nb, g, p, par);
          cg = cols;
        }
        gemm(be, false, true, p.OCg, p.K, ld, gg, ld, cg, ld, beta, dw_acc + gi * p.OCg * p.K, p.K);
      }
      if (pdx) {
        const T* wg = pw + gi * p.OCg * p.K;
        T* dxg = pdx + (n0 * g.C + gi * p.Cg) * p.HW;
        if (direct) {
          gemm(be, true, false, p.K, p.L, p.OCg, wg, p.K, gg, ld, 0.0, dxg, p.L);
        } else {
          gemm(be, true, false, p.K, ld, p.OCg, wg, p.K, gg, ld, 0.0, cols, ld);
          col2im(dxg, cols, nb, g, p, par);
        }
      }
    }
  }, [&] {
    if (db) {
      T* pdb = db->data<T>();
#pragma omp for schedule(static)
      for (int64_t oc = 0; oc < g.OC; ++oc) {
        double s = 0;
        for (int t = 0; t < p.threads; ++t) s += db_acc[size_t(t * g.OC + oc)];
        pdb[oc] = T(s);
      }
    }
    if (!dw || (p.threads == 1 && started[0])) return;  // one thread accumulated straight into dw
#pragma omp for schedule(static)
    for (int64_t i = 0; i < nw; ++i) {
      T s = 0;  // no thread started means no samples: dW = 0
      for (int t = 0; t < p.threads; ++t)
        if (started[size_t(t)]) s += base[t * per + ncols + ngout + i];
      pdw[i] = s;
    }
  });
}

template <class T>
void backward(Backend& be, Tensor* dx, Tensor* dw, Tensor* db, const Tensor& gout, const Tensor& x, const Tensor& w,
              const ConvGeom& g) {
  if constexpr (std::is_same_v<T, float>) {
    // dW and db directly where the layer has few input taps (conv_wgrad_direct.cpp); dx by Winograd where it
    // wins (see above), else im2col + GEMM.
    if (dw && conv2d_direct_weight_grad(dw->data<float>(), db ? db->data<float>() : nullptr, gout.data<float>(),
                                        x.data<float>(), g))
      dw = nullptr, db = nullptr;
    if (dx && winograd_input_grad_wins(g) &&
        conv2d_winograd_input_grad(dx->data<float>(), gout.data<float>(), w.data<float>(), g))
      dx = nullptr;
    if (!dx && !dw && !db) return;
  }
  backward_im2col<T>(be, dx, dw, db, gout, x, w, g);
}

}  // namespace

void CpuBackend::conv2d(Tensor& out, const Tensor& x, const Tensor& w, const Tensor* bias, const ConvGeom& g) {
  dispatch_float(x.dtype(), "conv2d", [&]<class T>() { forward<T>(*this, out, x, w, bias, g); });
}

bool CpuBackend::conv2d_relu_max_pool2d(Tensor& out, Tensor& taps, const Tensor& x, const Tensor& w, const Tensor* bias,
                                        const ConvGeom& cg, const PoolGeom& pg) {
  // Only where the unfused chain would take the same kernels (Winograd forward instead: not fused).
  if (x.dtype() != DType::f32 || winograd_forward_wins(cg) || !conv_direct_wgrad_applies(cg)) return false;
  return conv2d_direct_relu_max_pool(out.data<float>(), taps.data<uint8_t>(), x.data<float>(), w.data<float>(),
                                     bias ? bias->data<float>() : nullptr, cg, pg);
}

bool CpuBackend::conv2d_relu_max_pool2d_weight_grad(Tensor& dw, Tensor* db, const Tensor& gout, const Tensor& taps,
                                                    const Tensor& x, const ConvGeom& cg, const PoolGeom& pg) {
  return dw.dtype() == DType::f32 &&
         conv2d_direct_weight_grad_relu_max_pool(dw.data<float>(), db ? db->data<float>() : nullptr,
                                                 gout.data<float>(), taps.data<uint8_t>(), x.data<float>(), cg, pg);
}

void CpuBackend::conv2d_backward(Tensor* dx, Tensor* dw, Tensor* db, const Tensor& gout, const Tensor& x,
                                 const Tensor& w, const ConvGeom& g) {
  dispatch_float(gout.dtype(), "conv2d_backward", [&]<class T>() { backward<T>(*this, dx, dw, db, gout, x, w, g); });
}

}  // namespace loom::cpu
