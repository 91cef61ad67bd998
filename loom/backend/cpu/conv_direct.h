// Direct AVX-512 forward convolution for stride-1 float32 convolutions on small planes (the 3x3 layers of
// small CNNs), without im2col. conv.cpp tries it after Winograd (conv_winograd.h, for the 3x3 shapes it won)
// and falls back to im2col + GEMM when it returns false; the backward pass stays im2col + GEMM.
//   if (!conv2d_direct(y, x, w, bias, g)) { /* im2col + GEMM */ }
#pragma once
#include <cstdint>

#include "loom/backend/backend.h"

namespace loom::cpu {

// Whether the direct kernel takes this geometry: stride 1, one group, a kernel larger than 1x1, output
// rows at least half the padded row (the rest of each row is computed and thrown away), a sample small
// enough to stay in L2, and a CPU that runs the AVX-512 kernels (cpu::has_avx512()).
bool conv_direct_applies(const ConvGeom& g);

// y (N, OC, OH, OW) = conv(x, w) + bias (bias may be null). False, touching nothing, if not applicable.
bool conv2d_direct(float* y, const float* x, const float* w, const float* bias, const ConvGeom& g);

// y, taps (N, OC, OH/2, OW/2) = relu_max_pool2d_2x2 (relu_max_pool_2x2.h) of conv(x, w) + bias, one sample at a
// time: each sample's activation lives only in a per-thread buffer (hot in L2), never in memory as a whole
// (5.5 MB for the seed CNN's first layer, written once and read back by the pool). Same values and taps as the
// two kernels run one after the other. False, touching nothing, unless conv_direct_applies(g) and pg is a 2x2 /
// stride 2 pool of exactly that output (cpu::is_max_pool_2x2).
bool conv2d_direct_relu_max_pool(float* y, uint8_t* taps, const float* x, const float* w, const float* bias,
                                 const ConvGeom& g, const PoolGeom& pg);

}  // namespace loom::cpu
