#include "loom/nn/dropout.h"

#include "loom/nn/repr.h"
#include "loom/ops/nn_functional.h"

namespace loom::nn {

Dropout::Dropout(const DropoutOptions& o) : options(o) {
  LOOM_CHECK(o.p >= 0.0 && o.p <= 1.0, "Dropout: probability has to be between 0 and 1, but got ", o.p);
}

Tensor Dropout::forward(const Tensor& x) { return dropout(x, options.p, is_training()); }

std::string Dropout::extra_repr() const { return "p=" + py_float(options.p) + ", inplace=False"; }

}  // namespace loom::nn
