// Convolution layers, like torch.nn.Conv1d / Conv2d (zero padding). Inputs are (N, C, L) / (N, C, H, W), or
// the same without the batch dim.
//   nn::Conv2d conv({.in = 3, .out = 16, .kernel_size = 3, .padding = 1});
//   nn::Conv2d dw({.in = 16, .out = 16, .kernel_size = {3, 3}, .stride = 2, .groups = 16, .bias = false});
//   Tensor y = conv(x);    // (N, 3, 32, 32) -> (N, 16, 32, 32)
// weight is (out, in / groups, kH, kW) and starts as in PyTorch: kaiming_uniform_(a = sqrt(5)); bias
// U(-1/sqrt(fan_in), 1/sqrt(fan_in)) with fan_in = in / groups * kH * kW.
#pragma once
#include "loom/nn/int_pair.h"
#include "loom/nn/module.h"

namespace loom::nn {

struct Conv2dOptions {
  int64_t in = 0;   // in_channels
  int64_t out = 0;  // out_channels
  IntPair kernel_size = 0;
  IntPair stride = 1;
  IntPair padding = 0;
  IntPair dilation = 1;
  int64_t groups = 1;
  bool bias = true;
};

class Conv2d : public Module {
 public:
  explicit Conv2d(const Conv2dOptions& o);
  Tensor forward(const Tensor& x) override;
  std::string extra_repr() const override;
  void reset_parameters();

  Conv2dOptions options;
  Tensor weight;  // (out, in / groups, kH, kW)
  Tensor bias;    // (out) unless options.bias is false
};

struct Conv1dOptions {
  int64_t in = 0;   // in_channels
  int64_t out = 0;  // out_channels
  int64_t kernel_size = 0;
  int64_t stride = 1;
  int64_t padding = 0;
  int64_t dilation = 1;
  int64_t groups = 1;
  bool bias = true;
};

class Conv1d : public Module {
 public:
  explicit Conv1d(const Conv1dOptions& o);
  Tensor forward(const Tensor& x) override;
  std::string extra_repr() const override;
  void reset_parameters();

  Conv1dOptions options;
  Tensor weight;  // (out, in / groups, k)
  Tensor bias;    // (out) unless options.bias is false
};

}  // namespace loom::nn
