// Quantized matrix products for inference: y (M, N) = x (M, K) W^T + b with W (N, K) held as Q8_0 or Q4_0
// rows. Activations are quantized to Q8_0 per 32-value block on the fly (as llama.cpp does), then every block
// pair is an int8 dot product (AVX-512 VNNI vpdpbusd where the CPU has it) scaled by the two block scales.
//   std::vector<quant::BlockQ8_0> xq(M * K / 32);
//   quant::quantize_rows_q8_0(x, xq.data(), M, K);
//   quant::qgemm(quant::QuantFormat::q4_0, w_bytes, xq.data(), bias, y, M, N, K);
#pragma once
#include <cstdint>

#include "loom/core/quant_blocks.h"

namespace loom::quant {

// Fast Q8_0 quantization of M rows of K floats; bit-identical to quantize_row_q8_0 (same rounding).
void quantize_rows_q8_0(const float* x, BlockQ8_0* y, int64_t M, int64_t K);

// Dot product of one weight row (format f, K values) with one Q8_0 activation row; the fast kernel.
float vec_dot(QuantFormat f, const void* w, const BlockQ8_0* x, int64_t K);

// y[m, n] = dot(W row n, x row m) + bias[n] (bias may be null). W: N rows of row_bytes(f, K) bytes each.
// Parallel over output columns; each weight row is read once for up to four activation rows.
void qgemm(QuantFormat f, const void* w, const BlockQ8_0* x, const float* bias, float* y, int64_t M, int64_t N,
           int64_t K);

// The same product from the reference loops (tests compare qgemm against it).
void qgemm_ref(QuantFormat f, const void* w, const BlockQ8_0* x, const float* bias, float* y, int64_t M, int64_t N,
               int64_t K);

}  // namespace loom::quant
