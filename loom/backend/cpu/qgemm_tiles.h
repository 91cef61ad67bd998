// The AVX-512 VNNI prefill kernel of quant::qgemm (qgemm_tiles.cpp says why it is laid out this way).
//   quant::ActRows a;
//   a.lay_out(xq, M, K / 32, quant::QuantFormat::q4_0);   // Q8_0 activation rows, once per product
//   quant::qgemm_tiles(quant::QuantFormat::q4_0, w, a, bias, y, M, N);
#pragma once
#include <cstdint>
#include <vector>

#include "loom/core/error.h"
#include "loom/core/quant_blocks.h"

namespace loom::quant {

// Q8_0 activation rows laid out for the kernel: each row's quants back to back (padded to an even number of
// blocks), their scales as floats, and per block the start value of the int32 accumulator, -offset * (sum of
// the block's quants), offset being what makes the weight format's bytes unsigned (Q8_0: 128, Q4_0: 8).
struct ActRows {
  int64_t M = 0, nb = 0, nb2 = 0;
  std::vector<int8_t> qs;
  std::vector<float> d;
  std::vector<int32_t> bsum, corr;
  void lay_out(const BlockQ8_0* x, int64_t rows, int64_t nblocks, QuantFormat f);
};

// Whether this build has the kernel (AVX-512 VNNI + BW + F16C compiled in).
bool qgemm_tiles_available();

// y[m, n] = dot(W row n, activation row m) + bias[n] (bias may be null) for m < M, n < N; W as in qgemm.
void qgemm_tiles(QuantFormat f, const void* w, const ActRows& a, const float* bias, float* y, int64_t M, int64_t N);

}  // namespace loom::quant
