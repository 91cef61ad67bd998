// Dropout, like torch.nn.Dropout: in training mode zeroes each element with probability p and scales the
// others by 1 / (1 - p) (inverted dropout, so eval needs no rescale); in eval mode it is the identity.
//   nn::Dropout drop({.p = 0.1});
//   Tensor h = drop(x);    // model.eval() turns it off
#pragma once
#include "loom/nn/module.h"

namespace loom::nn {

struct DropoutOptions {
  double p = 0.5;
};

class Dropout : public Module {
 public:
  explicit Dropout(const DropoutOptions& o = {});
  Tensor forward(const Tensor& x) override;
  std::string extra_repr() const override;

  DropoutOptions options;
};

}  // namespace loom::nn
