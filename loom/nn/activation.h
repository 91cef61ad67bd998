// Activation layers, like torch.nn.ReLU / GELU / Softmax. They hold no parameters; the functional forms
// are loom::relu, loom::gelu, loom::softmax, ...
//   nn::Sequential mlp(nn::Linear({.in = 4, .out = 8}), nn::GELU({.approximate = "tanh"}), nn::Linear({8, 2}));
//   nn::LeakyReLU act({.negative_slope = 0.2});
//   nn::LogSoftmax logp({.dim = 1});
#pragma once
#include <string>

#include "loom/nn/module.h"

namespace loom::nn {

class ReLU : public Module {
 public:
  Tensor forward(const Tensor& x) override;
};

struct LeakyReLUOptions {
  double negative_slope = 0.01;
};
class LeakyReLU : public Module {
 public:
  explicit LeakyReLU(const LeakyReLUOptions& o = {}) : options(o) {}
  Tensor forward(const Tensor& x) override;
  std::string extra_repr() const override;
  LeakyReLUOptions options;
};

struct ELUOptions {
  double alpha = 1.0;
};
class ELU : public Module {
 public:
  explicit ELU(const ELUOptions& o = {}) : options(o) {}
  Tensor forward(const Tensor& x) override;
  std::string extra_repr() const override;
  ELUOptions options;
};

struct GELUOptions {
  std::string approximate = "none";  // "none" (exact, erf) or "tanh"
};
class GELU : public Module {
 public:
  explicit GELU(const GELUOptions& o = {});
  Tensor forward(const Tensor& x) override;
  std::string extra_repr() const override;
  GELUOptions options;
};

class SiLU : public Module {
 public:
  Tensor forward(const Tensor& x) override;
};

class Sigmoid : public Module {
 public:
  Tensor forward(const Tensor& x) override;
};

class Tanh : public Module {
 public:
  Tensor forward(const Tensor& x) override;
};

// PyTorch requires dim (its implicit choice is deprecated); here it defaults to the last dim.
struct SoftmaxOptions {
  int64_t dim = -1;
};
class Softmax : public Module {
 public:
  explicit Softmax(const SoftmaxOptions& o = {}) : options(o) {}
  Tensor forward(const Tensor& x) override;
  std::string extra_repr() const override;
  SoftmaxOptions options;
};
class LogSoftmax : public Module {
 public:
  explicit LogSoftmax(const SoftmaxOptions& o = {}) : options(o) {}
  Tensor forward(const Tensor& x) override;
  std::string extra_repr() const override;
  SoftmaxOptions options;
};

}  // namespace loom::nn
