#include "loom/nn/activation.h"

#include "loom/nn/repr.h"
#include "loom/ops/elementwise.h"
#include "loom/ops/reduce.h"

namespace loom::nn {

Tensor ReLU::forward(const Tensor& x) { return relu(x); }

Tensor LeakyReLU::forward(const Tensor& x) { return leaky_relu(x, options.negative_slope); }
std::string LeakyReLU::extra_repr() const { return "negative_slope=" + py_float(options.negative_slope); }

Tensor ELU::forward(const Tensor& x) { return elu(x, options.alpha); }
std::string ELU::extra_repr() const { return "alpha=" + py_float(options.alpha); }

GELU::GELU(const GELUOptions& o) : options(o) {
  LOOM_CHECK(o.approximate == "none" || o.approximate == "tanh",
             "GELU: approximate must be \"none\" or \"tanh\", got \"", o.approximate, "\"");
}
Tensor GELU::forward(const Tensor& x) { return gelu(x, options.approximate); }
std::string GELU::extra_repr() const { return "approximate='" + options.approximate + "'"; }

Tensor SiLU::forward(const Tensor& x) { return silu(x); }
Tensor Sigmoid::forward(const Tensor& x) { return sigmoid(x); }
Tensor Tanh::forward(const Tensor& x) { return tanh(x); }

Tensor Softmax::forward(const Tensor& x) { return softmax(x, options.dim); }
std::string Softmax::extra_repr() const { return "dim=" + std::to_string(options.dim); }

Tensor LogSoftmax::forward(const Tensor& x) { return log_softmax(x, options.dim); }
std::string LogSoftmax::extra_repr() const { return "dim=" + std::to_string(options.dim); }

}  // namespace loom::nn
