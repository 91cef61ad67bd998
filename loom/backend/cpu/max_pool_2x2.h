// The max pooling every small CNN uses: 2x2 windows, stride 2, no padding or dilation, float32. The
// general kernel in pool.cpp walks taps with strided loads and was a third of a W2 training step; this one
// takes 16 outputs per AVX-512 step.
//   if (!max_pool2d_2x2(y, idx, x, g)) max_forward(y, idx, x, g);  // false: not this shape, or no AVX-512
//   if (!max_pool2d_2x2_backward(dx, gy, idx, g)) max_backward(dx, gy, idx, g);
#pragma once
#include <cstdint>

#include "loom/backend/backend.h"

namespace loom::cpu {

// True when g is a 2x2 / stride 2 pooling with every window inside the input (no padding, dilation 1,
// no ceil_mode overhang), so the fast kernel applies.
bool is_max_pool_2x2(const PoolGeom& g);

// y and idx as the general kernel writes them (PyTorch's tap order and NaN rule, int64 offsets within
// each plane). Returns false, touching nothing, when the shape is not 2x2 / stride 2 or the CPU does not
// run the AVX-512 kernels (cpu::has_avx512()).
bool max_pool2d_2x2(float* y, int64_t* idx, const float* x, const PoolGeom& g);

// dx from gy and the forward's indices: each input pixel gets its window's gradient or 0, written row by
// row (no zero-fill pass, no scalar scatter). Returns false, touching nothing, where the forward would.
bool max_pool2d_2x2_backward(float* dx, const float* gy, const int64_t* idx, const PoolGeom& g);

}  // namespace loom::cpu
