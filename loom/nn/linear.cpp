#include "loom/nn/linear.h"

#include <cmath>

#include "loom/nn/init.h"
#include "loom/nn/repr.h"
#include "loom/ops/creation.h"
#include "loom/ops/linalg.h"
#include "loom/ops/shape.h"

namespace loom::nn {

Linear::Linear(const LinearOptions& o) : options(o) {
  LOOM_CHECK(o.in > 0 && o.out > 0, "Linear: .in and .out must be positive, got in=", o.in, ", out=", o.out);
  weight = register_parameter("weight", empty({o.out, o.in}));
  bias = register_parameter("bias", o.bias ? empty({o.out}) : Tensor());
  reset_parameters();
}

void Linear::reset_parameters() {
  init::kaiming_uniform_(weight, std::sqrt(5.0));
  if (bias.defined()) {
    const double bound = 1.0 / std::sqrt(double(options.in));
    init::uniform_(bias, -bound, bound);
  }
}

Tensor Linear::forward(const Tensor& x) {
  LOOM_CHECK(x.dim() >= 1 && x.size(-1) == options.in, repr(), ": expected input with last dimension ", options.in,
             " (in_features), got shape ", x.shape());
  return linear(x, weight, bias);
}

std::string Linear::extra_repr() const {
  return "in_features=" + std::to_string(options.in) + ", out_features=" + std::to_string(options.out) +
         ", bias=" + py_bool(options.bias);
}

Tensor Flatten::forward(const Tensor& x) { return flatten(x, options.start_dim, options.end_dim); }

std::string Flatten::extra_repr() const {
  return "start_dim=" + std::to_string(options.start_dim) + ", end_dim=" + std::to_string(options.end_dim);
}

}  // namespace loom::nn
