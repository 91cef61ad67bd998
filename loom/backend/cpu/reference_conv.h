// Plain reference kernels for convolution and pooling (llm.c style), used by tests to check the fast
// kernels in conv.cpp / pool.cpp. Contiguous NCHW buffers, double accumulation, no tricks.
//   loom::ref::conv2d_forward(out.data<float>(), x.data<float>(), w.data<float>(), nullptr, geom);
//   loom::ref::max_pool2d_forward(y.data<double>(), idx.data<int64_t>(), x.data<double>(), pgeom);
#pragma once
#include <algorithm>
#include <cmath>
#include <cstdint>
#include <limits>

#include "loom/backend/backend.h"

namespace loom::ref {

// out (N, OC, OH, OW) = conv(inp (N, C, H, W), weight (OC, C/groups, KH, KW)) + bias (OC)
template <class T>
void conv2d_forward(T* out, const T* inp, const T* weight, const T* bias, const ConvGeom& g) {
  const int64_t Cg = g.C / g.groups, OCg = g.OC / g.groups;
  for (int64_t n = 0; n < g.N; ++n)
    for (int64_t oc = 0; oc < g.OC; ++oc) {
      const int64_t grp = oc / OCg;
      for (int64_t oh = 0; oh < g.OH; ++oh)
        for (int64_t ow = 0; ow < g.OW; ++ow) {
          double acc = bias ? double(bias[oc]) : 0.0;
          for (int64_t c = 0; c < Cg; ++c)
            for (int64_t kh = 0; kh < g.KH; ++kh)
              for (int64_t kw = 0; kw < g.KW; ++kw) {
                const int64_t ih = oh * g.sh - g.ph + kh * g.dh, iw = ow * g.sw - g.pw + kw * g.dw;
                if (ih < 0 || ih >= g.H || iw < 0 || iw >= g.W) continue;
                const T x = inp[((n * g.C + grp * Cg + c) * g.H + ih) * g.W + iw];
                const T w = weight[((oc * Cg + c) * g.KH + kh) * g.KW + kw];
                acc += double(x) * double(w);
              }
          out[((n * g.OC + oc) * g.OH + oh) * g.OW + ow] = T(acc);
        }
    }
}

// Gradients of conv2d_forward given dout (N, OC, OH, OW); any of dinp, dweight, dbias may be null.
// Every output is overwritten.
template <class T>
void conv2d_backward(T* dinp, T* dweight, T* dbias, const T* dout, const T* inp, const T* weight, const ConvGeom& g) {
  const int64_t Cg = g.C / g.groups, OCg = g.OC / g.groups;
  if (dinp)
    for (int64_t i = 0; i < g.N * g.C * g.H * g.W; ++i) dinp[i] = T(0);
  if (dweight)
    for (int64_t i = 0; i < g.OC * Cg * g.KH * g.KW; ++i) dweight[i] = T(0);
  if (dbias)
    for (int64_t oc = 0; oc < g.OC; ++oc) {
      double acc = 0;
      for (int64_t n = 0; n < g.N; ++n)
        for (int64_t i = 0; i < g.OH * g.OW; ++i) acc += double(dout[(n * g.OC + oc) * g.OH * g.OW + i]);
      dbias[oc] = T(acc);
    }
  for (int64_t n = 0; n < g.N; ++n)
    for (int64_t oc = 0; oc < g.OC; ++oc) {
      const int64_t grp = oc / OCg;
      for (int64_t oh = 0; oh < g.OH; ++oh)
        for (int64_t ow = 0; ow < g.OW; ++ow) {
          const T d = dout[((n * g.OC + oc) * g.OH + oh) * g.OW + ow];
          for (int64_t c = 0; c < Cg; ++c)
            for (int64_t kh = 0; kh < g.KH; ++kh)
              for (int64_t kw = 0; kw < g.KW; ++kw) {
                const int64_t ih = oh * g.sh - g.ph + kh * g.dh, iw = ow * g.sw - g.pw + kw * g.dw;
                if (ih < 0 || ih >= g.H || iw < 0 || iw >= g.W) continue;
                const int64_t xi = ((n * g.C + grp * Cg + c) * g.H + ih) * g.W + iw;
                const int64_t wi = ((oc * Cg + c) * g.KH + kh) * g.KW + kw;
                if (dinp) dinp[xi] += d * weight[wi];
                if (dweight) dweight[wi] += d * inp[xi];
              }
        }
    }
}

// out, indices (N, C, OH, OW) = max over each window of inp (N, C, H, W); indices are h * W + w.
template <class T>
void max_pool2d_forward(T* out, int64_t* indices, const T* inp, const PoolGeom& g) {
  for (int64_t p = 0; p < g.N * g.C; ++p)
    for (int64_t oh = 0; oh < g.OH; ++oh)
      for (int64_t ow = 0; ow < g.OW; ++ow) {
        T best = -std::numeric_limits<T>::infinity();
        int64_t arg = -1;
        for (int64_t kh = 0; kh < g.KH; ++kh)
          for (int64_t kw = 0; kw < g.KW; ++kw) {
            const int64_t ih = oh * g.sh - g.ph + kh * g.dh, iw = ow * g.sw - g.pw + kw * g.dw;
            if (ih < 0 || ih >= g.H || iw < 0 || iw >= g.W) continue;
            const T v = inp[(p * g.H + ih) * g.W + iw];
            if (arg < 0 || v > best || std::isnan(v)) {  // the first element in bounds, then any larger or NaN
              best = v;
              arg = ih * g.W + iw;
            }
          }
        out[(p * g.OH + oh) * g.OW + ow] = best;
        indices[(p * g.OH + oh) * g.OW + ow] = arg;
      }
}

template <class T>
void max_pool2d_backward(T* dinp, const T* dout, const int64_t* indices, const PoolGeom& g) {
  for (int64_t i = 0; i < g.N * g.C * g.H * g.W; ++i) dinp[i] = T(0);
  for (int64_t p = 0; p < g.N * g.C; ++p)
    for (int64_t i = 0; i < g.OH * g.OW; ++i) {
      const int64_t at = indices[p * g.OH * g.OW + i];
      if (at >= 0) dinp[p * g.H * g.W + at] += dout[p * g.OH * g.OW + i];
    }
}

// The number of elements an average-pooling window divides by (PyTorch's rule), and whether (ih, iw)
// is one of the window's inputs.
inline int64_t avg_pool_divisor(const PoolGeom& g, int64_t oh, int64_t ow) {
  const int64_t h0 = oh * g.sh - g.ph, w0 = ow * g.sw - g.pw;
  const int64_t h1 = std::min(h0 + g.KH, g.H + g.ph), w1 = std::min(w0 + g.KW, g.W + g.pw);
  if (g.count_include_pad) return (h1 - h0) * (w1 - w0);
  const int64_t hs = std::max<int64_t>(0, std::min(h1, g.H) - std::max<int64_t>(h0, 0));
  const int64_t ws = std::max<int64_t>(0, std::min(w1, g.W) - std::max<int64_t>(w0, 0));
  return hs * ws;
}

template <class T>
void avg_pool2d_forward(T* out, const T* inp, const PoolGeom& g) {
  for (int64_t p = 0; p < g.N * g.C; ++p)
    for (int64_t oh = 0; oh < g.OH; ++oh)
      for (int64_t ow = 0; ow < g.OW; ++ow) {
        double acc = 0;
        int64_t count = 0;
        for (int64_t kh = 0; kh < g.KH; ++kh)
          for (int64_t kw = 0; kw < g.KW; ++kw) {
            const int64_t ih = oh * g.sh - g.ph + kh, iw = ow * g.sw - g.pw + kw;
            if (ih < 0 || ih >= g.H || iw < 0 || iw >= g.W) continue;
            acc += double(inp[(p * g.H + ih) * g.W + iw]);
            ++count;
          }
        out[(p * g.OH + oh) * g.OW + ow] = count ? T(acc / double(avg_pool_divisor(g, oh, ow))) : T(0);
      }
}

template <class T>
void avg_pool2d_backward(T* dinp, const T* dout, const PoolGeom& g) {
  for (int64_t i = 0; i < g.N * g.C * g.H * g.W; ++i) dinp[i] = T(0);
  for (int64_t p = 0; p < g.N * g.C; ++p)
    for (int64_t oh = 0; oh < g.OH; ++oh)
      for (int64_t ow = 0; ow < g.OW; ++ow) {
        const int64_t div = avg_pool_divisor(g, oh, ow);
        for (int64_t kh = 0; kh < g.KH; ++kh)
          for (int64_t kw = 0; kw < g.KW; ++kw) {
            const int64_t ih = oh * g.sh - g.ph + kh, iw = ow * g.sw - g.pw + kw;
            if (ih < 0 || ih >= g.H || iw < 0 || iw >= g.W) continue;
            dinp[(p * g.H + ih) * g.W + iw] += T(double(dout[(p * g.OH + oh) * g.OW + ow]) / double(div));
          }
      }
}

// Adaptive average pooling: output cell i covers inputs [floor(i * H / OH), ceil((i + 1) * H / OH)).
template <class T>
void adaptive_avg_pool2d_forward(T* out, const T* inp, const PoolGeom& g) {
  for (int64_t p = 0; p < g.N * g.C; ++p)
    for (int64_t oh = 0; oh < g.OH; ++oh)
      for (int64_t ow = 0; ow < g.OW; ++ow) {
        const int64_t h0 = int64_t(std::floor(double(oh * g.H) / double(g.OH)));
        const int64_t h1 = int64_t(std::ceil(double((oh + 1) * g.H) / double(g.OH)));
        const int64_t w0 = int64_t(std::floor(double(ow * g.W) / double(g.OW)));
        const int64_t w1 = int64_t(std::ceil(double((ow + 1) * g.W) / double(g.OW)));
        double acc = 0;
        for (int64_t ih = h0; ih < h1; ++ih)
          for (int64_t iw = w0; iw < w1; ++iw) acc += double(inp[(p * g.H + ih) * g.W + iw]);
        out[(p * g.OH + oh) * g.OW + ow] = T(acc / double((h1 - h0) * (w1 - w0)));
      }
}

template <class T>
void adaptive_avg_pool2d_backward(T* dinp, const T* dout, const PoolGeom& g) {
  for (int64_t i = 0; i < g.N * g.C * g.H * g.W; ++i) dinp[i] = T(0);
  for (int64_t p = 0; p < g.N * g.C; ++p)
    for (int64_t oh = 0; oh < g.OH; ++oh)
      for (int64_t ow = 0; ow < g.OW; ++ow) {
        const int64_t h0 = int64_t(std::floor(double(oh * g.H) / double(g.OH)));
        const int64_t h1 = int64_t(std::ceil(double((oh + 1) * g.H) / double(g.OH)));
        const int64_t w0 = int64_t(std::floor(double(ow * g.W) / double(g.OW)));
        const int64_t w1 = int64_t(std::ceil(double((ow + 1) * g.W) / double(g.OW)));
        const double d = double(dout[(p * g.OH + oh) * g.OW + ow]) / double((h1 - h0) * (w1 - w0));
        for (int64_t ih = h0; ih < h1; ++ih)
          for (int64_t iw = w0; iw < w1; ++iw) dinp[(p * g.H + ih) * g.W + iw] += T(d);
      }
}

}  // namespace loom::ref
