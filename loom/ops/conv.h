// Convolution and pooling, like torch.nn.functional.conv2d / max_pool2d. Inputs are NCHW (NCL for 1-d);
// weights are (out_channels, in_channels / groups, kH, kW) as in PyTorch.
//   Tensor y = loom::conv2d(x, w, b, {.stride = {2, 2}, .padding = {1, 1}});
//   Tensor p = loom::max_pool2d(y, {.kernel_size = {2, 2}});
#pragma once
#include <array>

#include "loom/core/tensor.h"

namespace loom {

struct Conv2dArgs {
  std::array<int64_t, 2> stride = {1, 1};
  std::array<int64_t, 2> padding = {0, 0};
  std::array<int64_t, 2> dilation = {1, 1};
  int64_t groups = 1;
};
struct Conv1dArgs {
  int64_t stride = 1, padding = 0, dilation = 1, groups = 1;
};
struct Pool2dArgs {
  std::array<int64_t, 2> kernel_size = {2, 2};
  std::array<int64_t, 2> stride = {0, 0};  // {0, 0} means "same as kernel_size", as PyTorch's default
  std::array<int64_t, 2> padding = {0, 0};
  std::array<int64_t, 2> dilation = {1, 1};  // max pooling only
  bool ceil_mode = false;
  bool count_include_pad = true;  // avg pooling only
};

Tensor conv2d(const Tensor& x, const Tensor& weight, const Tensor& bias = {}, const Conv2dArgs& a = {});
Tensor conv1d(const Tensor& x, const Tensor& weight, const Tensor& bias = {}, const Conv1dArgs& a = {});
Tensor max_pool2d(const Tensor& x, const Pool2dArgs& a = {});
std::pair<Tensor, Tensor> max_pool2d_with_indices(const Tensor& x, const Pool2dArgs& a = {});
// max_pool2d(relu(x), a) as one autograd node where the backend has a fused kernel (CPU: float32 2x2 / stride 2
// windows, no padding); the same composition otherwise. Values and gradients are identical either way.
Tensor relu_max_pool2d(const Tensor& x, const Pool2dArgs& a = {});
// relu_max_pool2d(conv2d(x, w, b, ca), pa) as one autograd node where the backend has a fused kernel (CPU: the
// direct float32 convolution of a layer with few input taps and a 2x2 / stride 2 pool) and x needs no gradient
// (a network's first layer): the convolution's output never goes to memory. The composition otherwise; the same
// values either way, gradients equal up to float summation order.
Tensor conv2d_relu_max_pool2d(const Tensor& x, const Tensor& w, const Tensor& b, const Conv2dArgs& ca,
                              const Pool2dArgs& pa);
Tensor avg_pool2d(const Tensor& x, const Pool2dArgs& a = {});
Tensor adaptive_avg_pool2d(const Tensor& x, std::array<int64_t, 2> output_size);

}  // namespace loom
