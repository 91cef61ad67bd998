// Direct AVX-512 weight and bias gradients for stride-1 float32 convolutions with few input taps (C*KH*KW
// small: a network's first layer, 1->32 3x3 in the seed CNN), without im2col. conv.cpp tries it before the
// im2col + GEMM path for dW / db; the input gradient keeps its own path.
//   if (!conv2d_direct_weight_grad(dw, db, gout, x, g)) { /* im2col + GEMM */ }
#pragma once
#include <cstdint>

#include "loom/backend/backend.h"

namespace loom::cpu {

// Whether the kernel takes this geometry: AVX-512 on this CPU, stride 1, one group, output rows of at least 8
// pixels (rows run as 16-lane vectors) and a small dW (OC x C*KH*KW), where im2col + GEMM spends its time around
// a tiny product rather than in it: at most 32 output channels with at most 36 taps, or at most 16 with at most
// 150. The measured rule (bench/conv_wgrad_bench, 1 thread, batch 64; im2col time / direct time): 1->32 3x3 on
// 28x28 3.3x, 3->32 3x3 pad 1 on 32x32 2.7x, 1->6 5x5 pad 2 2.7x, 2->32 3x3 2.0x, 6->16 5x5 1.2x, 8->16 and
// 16->16 3x3 on 13x13 1.35-1.38x, 4->32 3x3 1.14x; but 4->64 3x3 0.86x, 4->128 3x3 on 26x26 0.72x, 32->64
// 3x3 on 13x13 0.41x: with 64+ output channels the GEMM is wide enough to run near its peak.
bool conv_direct_wgrad_applies(const ConvGeom& g);
// Benches and tests only: false makes conv_direct_wgrad_applies() false until set back, so the im2col + GEMM
// path it replaces can be timed and compared on the same shapes.
void set_direct_wgrad_enabled(bool on);

// dw (OC, C, KH, KW) = sum over samples and output pixels of gout * the input window, db (OC) = sum of gout;
// either may be null. Overwrites both. False, touching nothing, if not applicable.
bool conv2d_direct_weight_grad(float* dw, float* db, const float* gout, const float* x, const ConvGeom& g);

// The same for a convolution followed by ReLU and a 2x2 / stride 2 max pool (conv_direct.h's
// conv2d_direct_relu_max_pool), from the pool's output gradient gy and its taps: the convolution's output
// gradient is rebuilt a few samples at a time in a per-thread buffer (relu_max_pool2d_2x2_backward), never
// written to memory as a whole. False, touching nothing, unless both kernels take their geometries.
bool conv2d_direct_weight_grad_relu_max_pool(float* dw, float* db, const float* gy, const uint8_t* taps,
                                             const float* x, const ConvGeom& g, const PoolGeom& pg);

}  // namespace loom::cpu
