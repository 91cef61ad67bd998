// Branch-free float math that GCC vectorises inside `#pragma omp simd` loops (glibc's expf/tanhf are
// scalar calls unless built with -ffast-math, which would also break NaN handling elsewhere).
// Every function is always_inline: a translation unit with many callers (elementwise.cpp instantiates
// each op for several dtypes and loop shapes) exceeds GCC's inlining budget, vexp then stays an
// out-of-line scalar call, and a call inside a loop blocks vectorisation (-fopt-info-vec-missed said
// "statement clobbers memory: vexp"): sigmoid took 11.7 ms per 1M floats instead of ~0.5 ms.
// exp: Cody-Waite range reduction to r in [-ln2/2, ln2/2], degree-6 polynomial, 2^n by exponent bits;
// max error about 1 ulp on [-87, 88], gradual underflow below. Doubles use the libm functions (f64 is the gradcheck type).
//   y[i] = vexp(x[i]);   y[i] = vsigmoid(x[i]);   y[i] = vtanh(x[i]);
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

}  // namespace loom::cpu
