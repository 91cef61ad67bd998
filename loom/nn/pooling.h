// Pooling layers, like torch.nn.MaxPool2d / AvgPool2d / AdaptiveAvgPool2d, over (N, C, H, W) or (C, H, W).
//   nn::MaxPool2d pool({.kernel_size = 2});                 // stride defaults to kernel_size
//   nn::AvgPool2d avg({.kernel_size = 3, .stride = 1, .padding = 1});
//   nn::AdaptiveAvgPool2d gap({.output_size = 1});          // global average pooling -> (N, C, 1, 1)
#pragma once
#include "loom/nn/int_pair.h"
#include "loom/nn/module.h"

namespace loom::nn {

struct MaxPool2dOptions {
  IntPair kernel_size = 0;
  IntPair stride = 0;  // 0 means kernel_size, as PyTorch's stride=None
  IntPair padding = 0;
  IntPair dilation = 1;
  bool ceil_mode = false;
};

class MaxPool2d : public Module {
 public:
  explicit MaxPool2d(const MaxPool2dOptions& o);
  Tensor forward(const Tensor& x) override;
  // forward(relu(x)) as one fused op (loom::relu_max_pool2d): Sequential runs a ReLU -> MaxPool2d pair so.
  Tensor forward_relu(const Tensor& x);
  std::string extra_repr() const override;
  MaxPool2dOptions options;  // stride resolved (never 0)
};

struct AvgPool2dOptions {
  IntPair kernel_size = 0;
  IntPair stride = 0;  // 0 means kernel_size
  IntPair padding = 0;
  bool ceil_mode = false;
  bool count_include_pad = true;
};

class AvgPool2d : public Module {
 public:
  explicit AvgPool2d(const AvgPool2dOptions& o);
  Tensor forward(const Tensor& x) override;
  std::string extra_repr() const override;
  AvgPool2dOptions options;  // stride resolved (never 0)
};

struct AdaptiveAvgPool2dOptions {
  IntPair output_size = 1;
};

class AdaptiveAvgPool2d : public Module {
 public:
  explicit AdaptiveAvgPool2d(const AdaptiveAvgPool2dOptions& o = {});
  Tensor forward(const Tensor& x) override;
  std::string extra_repr() const override;
  AdaptiveAvgPool2dOptions options;
};

}  // namespace loom::nn
