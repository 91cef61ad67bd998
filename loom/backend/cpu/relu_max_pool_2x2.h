// ReLU followed by 2x2 / stride 2 max pooling in one pass (the ReLU -> MaxPool2d pair of every small CNN).
// relu and max commute, so the pooled output is relu of each window's max; one byte per output (the winning
// tap, or "no gradient") replaces the ReLU output and the int64 indices the two ops would each keep.
//   if (!relu_max_pool2d_2x2(y, taps, x, g)) y = max_pool2d(relu(x));   // false: not this shape, or no AVX-512
//   relu_max_pool2d_2x2_backward(dx, gy, taps, g);
#pragma once
#include <cstdint>

#include "loom/backend/backend.h"

namespace loom::cpu {

// The tap code for outputs whose gradient relu zeroes (window max <= 0 or NaN); 0..3 name tap kh * 2 + kw.
inline constexpr uint8_t kReluPoolNoGrad = 4;

// y = max_pool2d(relu(x)) exactly as the two ops give it (PyTorch's tap order and NaN rule; relu keeps NaN),
// taps as above. Returns false, touching nothing, unless cpu::is_max_pool_2x2(g) and the AVX-512 kernels run.
bool relu_max_pool2d_2x2(float* y, uint8_t* taps, const float* x, const PoolGeom& g);

// dx (all of it) from gy and taps: each window's gradient at its winning tap, 0 elsewhere. As the forward,
// returns false, touching nothing, when it would.
bool relu_max_pool2d_2x2_backward(float* dx, const float* gy, const uint8_t* taps, const PoolGeom& g);

}  // namespace loom::cpu
