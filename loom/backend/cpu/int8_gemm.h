// Dynamic int8 products (PyTorch's quantize_dynamic on fbgemm): per-output-channel symmetric int8 weights, u8
// activations quantized per tensor on each call, int32 accumulation, the float scales and bias applied after.
//   Int8Params p = quant::choose_int8_params(xmin, xmax);
//   quant::int8_gemm({y, N, 1}, {x, K, 1}, M, K, p, {q, scale, sums, bias, N});   // y (M, N) = x (M, K) W^T + b
// int8_gemm is the fast kernel (AVX-512 VNNI vpdpbusd, u8 activations x s8 weights); int8_gemm_ref the plain
// loops the tests hold it to (the same integers, so the same floats up to the order of two multiplications).
#pragma once
#include <cstdint>

#include "loom/backend/backend.h"

namespace loom::quant {

// torch 1.13's per_channel_symmetric qint8 rule for one row of K weights: scale = max(amax / 127.5, eps),
// q = clamp(nearbyint(w * (1 / scale)), -128, 127) (fbgemm's Quantize, ties to even).
void quantize_int8_row(const float* w, int8_t* q, float* scale, int64_t K);

// ATen's ChooseQuantizationParams(min, max, 0, 255, preserve_sparsity = false, force_power_of_two = false,
// reduce_range = true): the range widened to hold 0, levels 0..127, scale 0.1 for an all-zero range, the
// small-scale cut-off at 6.1e-5 and the zero point taken from the end with the smaller error.
Int8Params choose_int8_params(float min, float max);

// fbgemm's activation quantizer: clamp(nearbyint(fma(x, 1 / scale, zero_point)), 0, 255), NaN to 0.
uint8_t quantize_u8(float x, float inv_scale, float zero_point);

// A strided 2-d f32 matrix: element (r, c) at p[r * s0 + c * s1].
struct StridedF32 {
  float* p;
  int64_t s0, s1;
};
struct ConstStridedF32 {
  const float* p;
  int64_t s0, s1;
};

// The weights: N rows of K int8, one scale and one row sum (sum_k q[n, k]) per row, bias (N) or null.
struct Int8Weights {
  const int8_t* q;
  const float* scale;
  const int32_t* sums;
  const float* bias;
  int64_t N;
};

// y (M, N) = float(sum_k (xq[m, k] - zp) q[n, k]) * (xp.scale * scale[n]) + bias[n], xq = quantize_u8(x (M, K)).
void int8_gemm(StridedF32 y, ConstStridedF32 x, int64_t M, int64_t K, Int8Params xp, const Int8Weights& w);
void int8_gemm_ref(StridedF32 y, ConstStridedF32 x, int64_t M, int64_t K, Int8Params xp, const Int8Weights& w);
// The same for B independent (M, K) inputs, entry b at x.p + b * x_sb into y.p + b * y_sb (a convolution's samples),
// in one parallel region.
void int8_gemm_batched(StridedF32 y, int64_t y_sb, ConstStridedF32 x, int64_t x_sb, int64_t B, int64_t M, int64_t K,
                       Int8Params xp, const Int8Weights& w);

// Whether int8_gemm runs the VNNI kernel here (else it runs the reference loops).
bool int8_gemm_is_vnni();

}  // namespace loom::quant
