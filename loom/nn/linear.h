// Linear, Identity and Flatten layers, like torch.nn.Linear / Identity / Flatten.
//   nn::Linear fc({.in = 784, .out = 10});          // weight (10, 784), bias (10); y = x W^T + b
//   nn::Flatten flat;                               // (N, C, H, W) -> (N, C * H * W)
//   Tensor y = fc(flat(x));
// Options use PyTorch's names except .in / .out (in_features / out_features, in_channels / out_channels for
// convolutions), which print under PyTorch's names.
#pragma once
#include "loom/nn/module.h"

namespace loom::nn {

struct LinearOptions {
  int64_t in = 0;   // in_features
  int64_t out = 0;  // out_features
  bool bias = true;
};

// weight and bias start as in PyTorch: kaiming_uniform_(a = sqrt(5)), i.e. U(-1/sqrt(in), 1/sqrt(in)), and
// bias U(-1/sqrt(in), 1/sqrt(in)).
class Linear : public Module {
 public:
  explicit Linear(const LinearOptions& o);
  Tensor forward(const Tensor& x) override;
  std::string extra_repr() const override;
  void reset_parameters();

  LinearOptions options;
  Tensor weight;  // (out, in)
  Tensor bias;    // (out), undefined when options.bias is false
};

class Identity : public Module {
 public:
  Tensor forward(const Tensor& x) override { return x; }
};

struct FlattenOptions {
  int64_t start_dim = 1;
  int64_t end_dim = -1;
};

class Flatten : public Module {
 public:
  explicit Flatten(const FlattenOptions& o = {}) : options(o) {}
  Tensor forward(const Tensor& x) override;
  std::string extra_repr() const override;

  FlattenOptions options;
};

}  // namespace loom::nn
