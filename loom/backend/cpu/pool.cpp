// Pooling: direct loops over each (sample, channel) plane, planes spread across threads. A pooling
// window is small and read once per output, so im2col-style tricks would only add memory traffic.
// Window bounds depend only on the output row or column, so they are computed once per call into small
// per-axis tables (the divisions were most of the time when done per output). Backward kernels own
// whole dx planes, so they accumulate without atomics.
#include <algorithm>
#include <limits>
#include <type_traits>
#include <utility>
#include <vector>

#include "loom/backend/cpu/cpu_backend.h"
#include "loom/backend/cpu/loop.h"
#include "loom/backend/cpu/max_pool_2x2.h"
#include "loom/backend/cpu/relu_max_pool_2x2.h"
#include "loom/core/dispatch.h"

namespace loom::cpu {

namespace {

// Runs f(plane) for each of the N*C planes, in parallel when the total work is worth it.
template <class F>
void for_planes(const PoolGeom& g, int64_t work_per_plane, F f) {
  const int64_t planes = g.N * g.C;
#pragma omp parallel for schedule(static) if (planes * work_per_plane >= kParallelGrain && planes > 1)
  for (int64_t pl = 0; pl < planes; ++pl) f(pl);
}

// One output position's window along one axis: input positions start + i * step for taps i in
// [first, last) lie inside the input. `divisor` is the window's extent for average pooling.
struct Window {
  int64_t start, first, last, divisor;
};

// Max pooling windows: k taps d apart from o*s - p; the taps outside [0, size) are skipped.
std::vector<Window> max_windows(int64_t out, int64_t size, int64_t k, int64_t s, int64_t p, int64_t d) {
  std::vector<Window> w(static_cast<size_t>(out));
  for (int64_t o = 0; o < out; ++o) {
    const int64_t start = o * s - p;
    const int64_t first = start >= 0 ? 0 : (-start + d - 1) / d;
    const int64_t last = size - start <= 0 ? 0 : std::min(k, (size - 1 - start) / d + 1);
    w[size_t(o)] = {start, first, std::max(first, last), 0};
  }
  return w;
}

// Average pooling windows with PyTorch's divisor: the window clipped to the padded input when padding
// counts, else to the input itself.
std::vector<Window> avg_windows(int64_t out, int64_t size, int64_t k, int64_t s, int64_t p, bool include_pad) {
  std::vector<Window> w(static_cast<size_t>(out));
  for (int64_t o = 0; o < out; ++o) {
    const int64_t start = o * s - p, end = std::min(start + k, size + p);
    const int64_t lo = std::max<int64_t>(start, 0), hi = std::min(end, size);
    w[size_t(o)] = {0, lo, std::max(lo, hi), include_pad ? end - start : std::max<int64_t>(hi - lo, 0)};
  }
  return w;
}

// Adaptive windows as PyTorch: [floor(o * size / out), ceil((o + 1) * size / out)).
std::vector<Window> adaptive_windows(int64_t out, int64_t size) {
  std::vector<Window> w(static_cast<size_t>(out));
  for (int64_t o = 0; o < out; ++o) {
    const int64_t lo = o * size / out, hi = ((o + 1) * size + out - 1) / out;
    w[size_t(o)] = {0, lo, hi, hi - lo};
  }
  return w;
}

// Folds the in-bounds taps of one window row (input offset `row`) into output ow's running max.
template <class T>
inline void max_taps(T* ym, int64_t* yi, int64_t ow, const T* xp, int64_t row, const Window& tw, int64_t dw) {
  for (int64_t j = tw.first; j < tw.last; ++j) {
    const T v = xp[row + j * dw];
    if (v > ym[ow] || v != v) {
      ym[ow] = v;
      yi[ow] = row + j * dw;
    }
  }
}

// The output columns [lo, hi) whose windows lie fully inside the input horizontally (windows move
// monotonically, so they form one run).
std::pair<int64_t, int64_t> full_run(const std::vector<Window>& w, int64_t k) {
  int64_t lo = 0, hi = int64_t(w.size());
  while (lo < hi && (w[size_t(lo)].first != 0 || w[size_t(lo)].last != k)) ++lo;
  while (hi > lo && (w[size_t(hi - 1)].first != 0 || w[size_t(hi - 1)].last != k)) --hi;
  return {lo, hi};
}

template <class T>
void max_forward(T* y, int64_t* idx, const T* x, const PoolGeom& g) {
  const int64_t HW = g.H * g.W, L = g.OH * g.OW;
  const auto wh = max_windows(g.OH, g.H, g.KH, g.sh, g.ph, g.dh), ww = max_windows(g.OW, g.W, g.KW, g.sw, g.pw, g.dw);
  const auto [c0, c1] = full_run(ww, g.KW);
  for_planes(g, L * g.KH * g.KW, [&](int64_t pl) {
    const T* xp = x + pl * HW;
    for (int64_t oh = 0; oh < g.OH; ++oh) {
      const Window& th = wh[size_t(oh)];
      T* ym = y + pl * L + oh * g.OW;
      int64_t* yi = idx + pl * L + oh * g.OW;
      // As PyTorch: taps in row-major order, a larger value or a NaN replaces the current one, and an
      // all -inf window reports its first in-bounds element. A window with no element inside the input
      // (possible with dilation) gets -1, which backward skips.
      const int64_t row0 = (th.start + th.first * g.dh) * g.W;
      for (int64_t ow = 0; ow < g.OW; ++ow) {
        const Window& tw = ww[size_t(ow)];
        ym[ow] = -std::numeric_limits<T>::infinity();
        yi[ow] = th.first >= th.last || tw.first >= tw.last ? -1 : row0 + tw.start + tw.first * g.dw;
      }
      for (int64_t i = th.first; i < th.last; ++i) {
        const int64_t row = (th.start + i * g.dh) * g.W;
        auto edge = [&](int64_t ow) { max_taps(ym, yi, ow, xp, row + ww[size_t(ow)].start, ww[size_t(ow)], g.dw); };
        for (int64_t ow = 0; ow < c0; ++ow) edge(ow);
        for (int64_t ow = c1; ow < g.OW; ++ow) edge(ow);
        // Interior columns: one vectorised pass per tap, with selects instead of branches (on real data
        // the comparison is a coin flip the branch predictor misses).
        for (int64_t j = 0; j < g.KW; ++j) {
          const int64_t off = row + j * g.dw - g.pw;
#pragma omp simd
          for (int64_t ow = c0; ow < c1; ++ow) {
            const int64_t pos = off + ow * g.sw;
            const T v = xp[pos];
            const bool take = v > ym[ow] || v != v;
            ym[ow] = take ? v : ym[ow];
            yi[ow] = take ? pos : yi[ow];
          }
        }
      }
    }
  });
}

template <class T>
void max_backward(T* dx, const T* gy, const int64_t* idx, const PoolGeom& g) {
  const int64_t HW = g.H * g.W, L = g.OH * g.OW;
  for_planes(g, HW + L, [&](int64_t pl) {
    T* dp = dx + pl * HW;
    std::fill(dp, dp + HW, T(0));
    const T* gp = gy + pl * L;
    const int64_t* ip = idx + pl * L;
    for (int64_t l = 0; l < L; ++l)
      if (ip[l] >= 0 && ip[l] < HW) dp[ip[l]] += gp[l];
  });
}

// Output columns [c0, c1) whose window is the unclipped [ow*s - p, ow*s - p + k): those are done in
// vectorised passes over the row. Empty for adaptive pooling, whose windows vary in size.
struct Run {
  int64_t c0 = 0, c1 = 0, k = 0, s = 1, p = 0;
};

// y[o] = sum of x over window o / its divisor (0 for an empty window), for average and adaptive pooling.
template <class T>
void window_mean(T* y, const T* x, const PoolGeom& g, const std::vector<Window>& wh, const std::vector<Window>& ww,
                 const Run& r) {
  const int64_t HW = g.H * g.W, L = g.OH * g.OW;
  for_planes(g, L * (wh[0].last - wh[0].first) * (ww[0].last - ww[0].first) + 1, [&](int64_t pl) {
    const T* xp = x + pl * HW;
    for (int64_t oh = 0; oh < g.OH; ++oh) {
      const Window& a = wh[size_t(oh)];
      T* ym = y + pl * L + oh * g.OW;
      for (int64_t ow = 0; ow < g.OW; ++ow) {
        if (ow == r.c0) ow = r.c1;
        if (ow >= g.OW) break;
        const Window& b = ww[size_t(ow)];
        T s = 0;
        for (int64_t h = a.first; h < a.last; ++h)
          for (int64_t w = b.first; w < b.last; ++w) s += xp[h * g.W + w];
        ym[ow] = a.first >= a.last || b.first >= b.last ? T(0) : s / T(a.divisor * b.divisor);
      }
      std::fill(ym + r.c0, ym + r.c1, T(0));
      for (int64_t h = a.first; h < a.last; ++h)
        for (int64_t j = 0; j < r.k; ++j) {
          const T* src = xp + h * g.W + j - r.p;
#pragma omp simd
          for (int64_t ow = r.c0; ow < r.c1; ++ow) ym[ow] += src[ow * r.s];
        }
      const T div = T(a.divisor * r.k);
      for (int64_t ow = r.c0; ow < r.c1; ++ow) ym[ow] = a.first >= a.last ? T(0) : ym[ow] / div;
    }
  });
}

// dx = each output gradient / its divisor, added over that output's window.
template <class T>
void window_mean_backward(T* dx, const T* gy, const PoolGeom& g, const std::vector<Window>& wh,
                          const std::vector<Window>& ww, const Run& r) {
  const int64_t HW = g.H * g.W, L = g.OH * g.OW;
  for_planes(g, HW + L * (wh[0].last - wh[0].first) * (ww[0].last - ww[0].first), [&](int64_t pl) {
    T* dp = dx + pl * HW;
    std::fill(dp, dp + HW, T(0));
    for (int64_t oh = 0; oh < g.OH; ++oh) {
      const Window& a = wh[size_t(oh)];
      if (a.first >= a.last) continue;
      const T* gm = gy + pl * L + oh * g.OW;
      for (int64_t ow = 0; ow < g.OW; ++ow) {
        if (ow == r.c0) ow = r.c1;
        if (ow >= g.OW) break;
        const Window& b = ww[size_t(ow)];
        if (b.first >= b.last) continue;
        const T v = gm[ow] / T(a.divisor * b.divisor);
        for (int64_t h = a.first; h < a.last; ++h)
          for (int64_t w = b.first; w < b.last; ++w) dp[h * g.W + w] += v;
      }
      // For one tap j, distinct columns ow touch distinct pixels, so each pass vectorises without conflicts.
      const T div = T(a.divisor * r.k);
      for (int64_t h = a.first; h < a.last; ++h)
        for (int64_t j = 0; j < r.k; ++j) {
          T* dst = dp + h * g.W + j - r.p;
#pragma omp simd
          for (int64_t ow = r.c0; ow < r.c1; ++ow) dst[ow * r.s] += gm[ow] / div;
        }
    }
  });
}

Run avg_run(const std::vector<Window>& ww, const PoolGeom& g) {
  // Unclipped windows are exactly those of full size KW that start at ow*sw - pw >= 0.
  Run r{.k = g.KW, .s = g.sw, .p = g.pw};
  const int64_t n = int64_t(ww.size());
  auto full = [&](int64_t ow) { return ow * g.sw - g.pw >= 0 && ow * g.sw - g.pw + g.KW <= g.W; };
  while (r.c0 < n && !full(r.c0)) ++r.c0;
  r.c1 = r.c0;
  while (r.c1 < n && full(r.c1)) ++r.c1;
  return r;
}

}  // namespace

void CpuBackend::max_pool2d(Tensor& out, Tensor& indices, const Tensor& x, const PoolGeom& g) {
  dispatch_float(x.dtype(), "max_pool2d", [&]<class T>() {
    if constexpr (std::is_same_v<T, float>)
      if (max_pool2d_2x2(out.data<float>(), indices.data<int64_t>(), x.data<float>(), g)) return;
    max_forward(out.data<T>(), indices.data<int64_t>(), x.data<T>(), g);
  });
}

void CpuBackend::max_pool2d_backward(Tensor& dx, const Tensor& gout, const Tensor& indices, const PoolGeom& g) {
  dispatch_float(dx.dtype(), "max_pool2d_backward", [&]<class T>() {
    if constexpr (std::is_same_v<T, float>)
      if (max_pool2d_2x2_backward(dx.data<float>(), gout.data<float>(), indices.data<int64_t>(), g)) return;
    max_backward(dx.data<T>(), gout.data<T>(), indices.data<int64_t>(), g);
  });
}

bool CpuBackend::relu_max_pool2d_2x2(Tensor& out, Tensor& taps, const Tensor& x, const PoolGeom& g) {
  return x.dtype() == DType::f32 && cpu::relu_max_pool2d_2x2(out.data<float>(), taps.data<uint8_t>(), x.data<float>(), g);
}

bool CpuBackend::relu_max_pool2d_2x2_backward(Tensor& dx, const Tensor& gout, const Tensor& taps, const PoolGeom& g) {
  return dx.dtype() == DType::f32 &&
         cpu::relu_max_pool2d_2x2_backward(dx.data<float>(), gout.data<float>(), taps.data<uint8_t>(), g);
}

void CpuBackend::avg_pool2d(Tensor& out, const Tensor& x, const PoolGeom& g) {
  const auto wh = avg_windows(g.OH, g.H, g.KH, g.sh, g.ph, g.count_include_pad);
  const auto ww = avg_windows(g.OW, g.W, g.KW, g.sw, g.pw, g.count_include_pad);
  const Run r = avg_run(ww, g);
  dispatch_float(x.dtype(), "avg_pool2d", [&]<class T>() { window_mean(out.data<T>(), x.data<T>(), g, wh, ww, r); });
}

void CpuBackend::avg_pool2d_backward(Tensor& dx, const Tensor& gout, const PoolGeom& g) {
  const auto wh = avg_windows(g.OH, g.H, g.KH, g.sh, g.ph, g.count_include_pad);
  const auto ww = avg_windows(g.OW, g.W, g.KW, g.sw, g.pw, g.count_include_pad);
  const Run r = avg_run(ww, g);
  dispatch_float(dx.dtype(), "avg_pool2d_backward",
                 [&]<class T>() { window_mean_backward(dx.data<T>(), gout.data<T>(), g, wh, ww, r); });
}

void CpuBackend::adaptive_avg_pool2d(Tensor& out, const Tensor& x, const PoolGeom& g) {
  const auto wh = adaptive_windows(g.OH, g.H), ww = adaptive_windows(g.OW, g.W);
  dispatch_float(x.dtype(), "adaptive_avg_pool2d",
                 [&]<class T>() { window_mean(out.data<T>(), x.data<T>(), g, wh, ww, Run{}); });
}

void CpuBackend::adaptive_avg_pool2d_backward(Tensor& dx, const Tensor& gout, const PoolGeom& g) {
  const auto wh = adaptive_windows(g.OH, g.H), ww = adaptive_windows(g.OW, g.W);
  dispatch_float(dx.dtype(), "adaptive_avg_pool2d_backward",
                 [&]<class T>() { window_mean_backward(dx.data<T>(), gout.data<T>(), g, wh, ww, Run{}); });
}

}  // namespace loom::cpu
