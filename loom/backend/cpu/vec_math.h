// Branch-free float math that GCC vectorises inside `#pragma omp simd` loops (glibc's expf/tanhf are
// scalar calls unless built with -ffast-math, which would also break NaN handling elsewhere).
// Every function is always_inline: a translation unit with many callers (elementwise.cpp instantiates
// each op for several dtypes and loop shapes) exceeds GCC's inlining budget, vexp then stays an
// out-of-line scalar call, and a call inside a loop blocks vectorisation (-fopt-info-vec-missed said
// "statement clobbers memory: vexp"): sigmoid took 11.7 ms per 1M floats instead of ~0.5 ms.
// exp: Cody-Waite range reduction to r in [-ln2/2, ln2/2], degree-6 polynomial, 2^n by exponent bits;
// max error about 1 ulp on [-87, 88], gradual underflow below. Doubles use the libm functions (f64 is the gradcheck type).
//   y[i] = vexp(x[i]);   y[i] = vsigmoid(x[i]);   y[i] = vtanh(x[i]);   y[i] = vgelu(x[i]);
#pragma once
#include <cmath>
#include <cstdint>
#include <cstring>
#include <limits>

namespace loom::cpu {

#define LOOM_VEC_INLINE [[gnu::always_inline]] inline

LOOM_VEC_INLINE float vexp(float x) {
  // Clamps as comparisons and rounding by adding 1.5 * 2^23 rather than std::fmin/fmax/floor, which block
  // GCC's vectoriser without -ffast-math.
  float xc = x < -103.97208f ? -103.97208f : x;
  xc = xc > 88.72283f ? 88.72283f : xc;
  constexpr float kRound = 12582912.0f;
  const float n = (xc * 1.44269504088896341f + kRound) - kRound;
  float r = xc - n * 0.693359375f;
  r = r - n * -2.12194440e-4f;
  float p = 1.9875691500e-4f;
  p = p * r + 1.3981999507e-3f;
  p = p * r + 8.3334519073e-3f;
  p = p * r + 4.1665795894e-2f;
  p = p * r + 1.6666665459e-1f;
  p = p * r + 5.0000001201e-1f;
  p = p * r * r + r + 1.0f;
  // 2^n as exponent bits. n reaches 128 at the top of the range (scale by 2^(n-1) * 2) and goes below
  // -126 where results are subnormal (scale by 2^(n+24) * 2^-24, so they underflow gradually).
  const int32_t ni = int32_t(n);
  const int32_t adj = ni > 0 ? ni - 1 : (ni < -125 ? ni + 24 : ni);
  const int32_t bits = (adj + 127) << 23;
  float scale;
  std::memcpy(&scale, &bits, 4);
  float y = p * scale * (ni > 0 ? 2.0f : (ni < -125 ? 5.9604644775390625e-8f : 1.0f));
  y = x > 88.72283f ? std::numeric_limits<float>::infinity() : y;
  y = x < -103.97208f ? 0.0f : y;
  return x != x ? x : y;
}
LOOM_VEC_INLINE double vexp(double x) { return std::exp(x); }

// One exponential of -|x|, which never overflows: 1 / (1 + e) for x >= 0 and e / (1 + e) below, so the
// negative tail keeps its (subnormal) values down to -103 instead of flushing to 0 where e^-x overflows.
LOOM_VEC_INLINE float vsigmoid(float x) {
  const float e = vexp(x < 0.0f ? x : -x);
  const float s = 1.0f / (1.0f + e);
  return x < 0.0f ? e * s : s;
}
LOOM_VEC_INLINE double vsigmoid(double x) { return 1.0 / (1.0 + std::exp(-x)); }

// tanh: an odd polynomial near zero (keeps relative accuracy where 1 - 2/(e^2x + 1) would cancel),
// the exponential form elsewhere; computed on |x| and given x's sign last, so tanh(-0) = -0.
LOOM_VEC_INLINE float vtanh(float x) {
  const float ax = x < 0.0f ? -x : x;
  const float z = x * x;
  float p = -5.70498872745e-3f;
  p = p * z + 2.06390887954e-2f;
  p = p * z - 5.37397155531e-2f;
  p = p * z + 1.33314422036e-1f;
  p = p * z - 3.33332819422e-1f;
  const float small = ax + ax * z * p;
  const float e = vexp(2.0f * (ax > 9.0f ? 9.0f : ax));  // written so that NaN reaches the result
  const float big = ax > 9.0f ? 1.0f : 1.0f - 2.0f / (e + 1.0f);
  return std::copysign(ax < 0.625f ? small : big, x);
}
LOOM_VEC_INLINE double vtanh(double x) { return std::tanh(x); }

// The normal distribution's cdf Phi(x) and density phi(x) for the exact (erf) GELU, vectorisable, with a
// relative error of a few 1e-7 out to |x| ~ 14 (where both underflow):
// - erfc(|z|), z = x / sqrt 2, as t * exp(-z^2 + P(t)), t = 1 / (1 + |z| / 2), with the degree-9 Chebyshev-fitted
//   P of Press et al., Numerical Recipes (2nd ed., 6.2, "erfcc"; relative error below 1.2e-7 for every z >= 0), so
//   the negative tail keeps its digits where 1 + erf(z) would cancel;
// - z^2 = x^2 / 2 is carried as h + l (l the rounding error of x * x, from an FMA) and e^(-h/2) taken apart from
//   e^(-l/2): rounding x^2 / 2 to a float would cost a relative error of ~x^2 * 6e-8 (1e-5 at x = -12).
LOOM_VEC_INLINE void normal_cdf_pdf(float x, float& cdf, float& pdf) {
  const float h = x * x;
  float l = std::fma(x, x, -h);
  l = l == l ? l : 0.0f;  // x = +-inf: inf - inf; the result is then decided by h alone
  const float g = vexp(-0.5f * h);
  pdf = g * (1.0f - 0.5f * l) * 0.39894228040143268f;  // e^(-l/2) = 1 - l/2 to float precision (|l| < ulp(h))
  const float ax = x < 0.0f ? -x : x;
  const float t = 1.0f / (1.0f + 0.35355339059327376f * ax);
  float p = 0.17087277f;
  p = p * t - 0.82215223f;
  p = p * t + 1.48851587f;
  p = p * t - 1.13520398f;
  p = p * t + 0.27886807f;
  p = p * t - 0.18628806f;
  p = p * t + 0.09678418f;
  p = p * t + 0.37409196f;
  p = p * t + 1.00002368f;
  p = p * t - 1.26551223f;
  const float half_erfc = 0.5f * t * g * vexp(p - 0.5f * l);  // erfc(|z|) / 2 = Phi(-|x|)
  cdf = x > 0.0f ? 1.0f - half_erfc : half_erfc;
}

// Exact (erf) GELU, x * Phi(x), and its derivative Phi(x) + x * phi(x). Doubles (the gradcheck type) use libm.
LOOM_VEC_INLINE float vgelu(float x) {
  float cdf, pdf;
  normal_cdf_pdf(x, cdf, pdf);
  return x * cdf;
}
LOOM_VEC_INLINE double vgelu(double x) { return 0.5 * x * (1.0 + std::erf(x * 0.70710678118654752)); }
LOOM_VEC_INLINE float vgelu_grad(float x) {
  float cdf, pdf;
  normal_cdf_pdf(x, cdf, pdf);
  return cdf + x * pdf;
}
LOOM_VEC_INLINE double vgelu_grad(double x) {
  return 0.5 * (1.0 + std::erf(x * 0.70710678118654752)) + x * std::exp(-0.5 * x * x) * 0.39894228040143268;
}

}  // namespace loom::cpu
