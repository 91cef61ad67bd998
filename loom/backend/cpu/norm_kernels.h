// Float32 layer-norm row kernels: vectorised forward and backward over one contiguous row of K values.
//   double mean, rstd;  cpu::ln_row_forward(x, y, K, w, b, 1e-5, mean, rstd);
//   cpu::ln_row_backward(g, x, K, mean, rstd, w, dx, dw_part, db_part);   // dw_part/db_part: float rows, +=
#pragma once

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <cstring>

namespace loom::cpu {

// Sums run in float vector lanes (GCC vector extensions, lowered to whatever the target has), two
// accumulators per sum to hide the add latency (four measured no faster: rows stream from L2/L3). Plain lane-array loops were tried: GCC 12
// vectorised the outer loop across blocks instead and emitted in-order (fold-left) reductions, 3x slower.
// Each block of kNormBlock values is folded into a double, so a 50257-wide row loses no more than a
// 512-wide one.
typedef float f32x8 __attribute__((vector_size(32)));
constexpr int64_t kVec = 8, kStep = 2 * kVec;
constexpr int64_t kNormBlock = 512;  // a multiple of kStep

inline f32x8 load8(const float* p) {
  f32x8 v;
  std::memcpy(&v, p, sizeof v);
  return v;
}

// A tree, not a chain: on 128-wide rows a serial 8-add chain per sum was a third of the forward's time.
inline double hsum(f32x8 a, f32x8 b) {
  const f32x8 s = a + b;
  const double t0 = double(s[0]) + double(s[4]), t1 = double(s[1]) + double(s[5]);
  const double t2 = double(s[2]) + double(s[6]), t3 = double(s[3]) + double(s[7]);
  return (t0 + t2) + (t1 + t3);
}

// term(ld, a, b) adds element k's contributions to the sums a and b, reading inputs with ld(pointer): one
// generic lambda serves both the 8-wide body (ld loads 8 floats) and the scalar tail.
template <class F>
inline void blocked_sum2(int64_t n, F&& term, double& s1, double& s2) {
  s1 = 0;
  s2 = 0;
  const int64_t nv = n - n % kVec;
  int64_t k = 0;
  while (k < nv) {
    const int64_t end = std::min(nv, k + kNormBlock);
    f32x8 a0{}, a1{}, b0{}, b1{};
    for (; k + kStep <= end; k += kStep) {
      term([k](const float* p) { return load8(p + k); }, a0, b0);
      term([k](const float* p) { return load8(p + k + kVec); }, a1, b1);
    }
    if (k < end) term([k](const float* p) { return load8(p + k); }, a0, b0), k += kVec;  // end - k is 0 or 8
    s1 += hsum(a0, a1);
    s2 += hsum(b0, b1);
  }
  float a = 0, b = 0;
  for (; k < n; ++k) term([k](const float* p) { return p[k]; }, a, b);
  s1 += a;
  s2 += b;
}

inline double blocked_sum(const float* x, int64_t n) {
  double s, unused;
  blocked_sum2(n, [x](auto ld, auto& a, auto&) { a += ld(x); }, s, unused);
  return s;
}

// The mean as a float shift plus a small float correction: (x - shift) is exact for x near the mean
// (Sterbenz), and subtracting the tiny correction after it keeps xhat accurate when |mean| >> std
// (x = 1000 + 1e-3 noise), where float(x - mean) alone would be off by a few percent.
struct Centre {
  float shift, corr;
  explicit Centre(double mean) : shift(float(mean)), corr(float(mean - double(float(mean)))) {}
};

// y = (x - mean) * rstd * w + b for one row; mean and rstd (1/sqrt(var + eps)) come back in double.
// Two passes: the mean, then the shifted sums of d = x - shift and d^2, so var = E[d^2] - E[d]^2 has
// no cancellation (E[d] is tiny) and the float rounding of the shift is corrected exactly.
inline void ln_row_forward(const float* x, float* y, int64_t K, const float* w, const float* b, double eps,
                           double& mean, double& rstd) {
  const float shift = float(blocked_sum(x, K) / double(K));
  double sd, sq;
  blocked_sum2(
      K,
      [x, shift](auto ld, auto& a, auto& q) {
        const auto d = ld(x) - shift;
        a += d;
        q += d * d;
      },
      sd, sq);
  const double md = sd / double(K);
  const double var = std::max(0.0, sq / double(K) - md * md);
  mean = double(shift) + md;
  rstd = 1.0 / std::sqrt(var + eps);
  const Centre c(mean);
  const float rs = float(rstd), sh = c.shift, corr = c.corr;
  if (w && b)
    for (int64_t k = 0; k < K; ++k) y[k] = ((x[k] - sh) - corr) * rs * w[k] + b[k];
  else if (w)
    for (int64_t k = 0; k < K; ++k) y[k] = ((x[k] - sh) - corr) * rs * w[k];
  else if (b)
    for (int64_t k = 0; k < K; ++k) y[k] = ((x[k] - sh) - corr) * rs + b[k];
  else
    for (int64_t k = 0; k < K; ++k) y[k] = ((x[k] - sh) - corr) * rs;
}

// One row of the backward: with xhat = (x - mean) * rstd and gw = g * w,
//   dx = rstd * (gw - mean(gw) - xhat * mean(gw * xhat)),  dw += g * xhat,  db += g.
// dx, dw and db may each be null; dw and db are float partial rows the caller folds into double.
inline void ln_row_backward(const float* g, const float* x, int64_t K, double mean, double rstd, const float* w,
                            float* dx, float* dw, float* db) {
  const Centre c(mean);
  const float rs = float(rstd), sh = c.shift, corr = c.corr;
  if (dx) {
    double s1, s2;
    if (w)
      blocked_sum2(
          K,
          [=](auto ld, auto& a, auto& q) {
            const auto gw = ld(g) * ld(w);
            a += gw;
            q += gw * (((ld(x) - sh) - corr) * rs);
          },
          s1, s2);
    else
      blocked_sum2(
          K,
          [=](auto ld, auto& a, auto& q) {
            a += ld(g);
            q += ld(g) * (((ld(x) - sh) - corr) * rs);
          },
          s1, s2);
    const float k1 = float(s1 / double(K)), k2 = float(s2 / double(K));
    if (w)
      for (int64_t k = 0; k < K; ++k) dx[k] = rs * (g[k] * w[k] - k1 - ((x[k] - sh) - corr) * rs * k2);
    else
      for (int64_t k = 0; k < K; ++k) dx[k] = rs * (g[k] - k1 - ((x[k] - sh) - corr) * rs * k2);
  }
  if (dw)
    for (int64_t k = 0; k < K; ++k) dw[k] += g[k] * (((x[k] - sh) - corr) * rs);
  if (db)
    for (int64_t k = 0; k < K; ++k) db[k] += g[k];
}

}  // namespace loom::cpu
