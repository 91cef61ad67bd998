// RMSNorm (torch.nn.RMSNorm, which PyTorch 1.13 does not have yet): y = x / sqrt(mean(x^2) + eps) * weight
// over the trailing normalized_shape dims, with no mean subtraction and no bias.
//   nn::RMSNorm norm({.normalized_shape = {768}});   Tensor y = norm(x);
//   Tensor z = loom::rms_norm(x, {768}, weight, 1e-6);
#pragma once
#include <optional>

#include "loom/nn/module.h"

namespace loom {

// eps defaults to the machine epsilon of x's dtype, as PyTorch's eps=None.
Tensor rms_norm(const Tensor& x, const Shape& normalized_shape, const Tensor& weight = {},
                std::optional<double> eps = std::nullopt);

}  // namespace loom

namespace loom::nn {

struct RMSNormOptions {
  Shape normalized_shape = {};
  std::optional<double> eps = std::nullopt;
  bool elementwise_affine = true;
};

class RMSNorm : public Module {
 public:
  explicit RMSNorm(const RMSNormOptions& o);
  Tensor forward(const Tensor& x) override;
  std::string extra_repr() const override;
  void reset_parameters();

  RMSNormOptions options;
  Tensor weight;  // normalized_shape, ones at start; undefined without elementwise_affine
};

}  // namespace loom::nn
