// Winograd F(2x2, 3x3) convolution (Lavin & Gray 2015) for stride-1, dilation-1, one-group 3x3 float32
// convolutions: 16 multiplies per 2x2 output tile instead of 36. conv.cpp calls it where it measured faster
// than the direct kernel (forward) or im2col + GEMM (input gradient); see the rules there.
//   if (conv_winograd_supports(g)) conv2d_winograd(y, x, w, bias, g);
#pragma once
#include <cstdint>

#include "loom/backend/backend.h"

namespace loom::cpu {

// Whether the Winograd kernel computes this geometry: 3x3, stride 1, dilation 1, one group, a non-empty
// output and a sample whose transformed tiles stay within L2-sized buffers. Any padding; odd output sizes
// compute the last tile row/column in full and drop its outside half. Both ISA paths take the same shapes.
bool conv_winograd_supports(const ConvGeom& g);

// y (N, OC, OH, OW) = conv(x, w) + bias (bias may be null). False, touching nothing, if not supported.
// The AVX-512 path where cpu::has_avx512(), plain loops and OpenBLAS's sgemm otherwise.
bool conv2d_winograd(float* y, const float* x, const float* w, const float* bias, const ConvGeom& g);

// dx (N, C, H, W) = the input gradient of that convolution for gout (N, OC, OH, OW): itself a stride-1 3x3
// convolution of gout padded by 2 - pad with the flipped weights, input and output channels swapped.
// Overwrites dx. False, touching nothing, if either convolution is not supported (padding above 2).
bool conv2d_winograd_input_grad(float* dx, const float* gout, const float* w, const ConvGeom& g);

}  // namespace loom::cpu
