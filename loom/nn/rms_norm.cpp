// RMSNorm as a composite of existing ops (their backward closures give its gradient).
#include "loom/nn/rms_norm.h"

#include <limits>

#include "loom/nn/init.h"
#include "loom/nn/repr.h"
#include "loom/ops/creation.h"
#include "loom/ops/elementwise.h"
#include "loom/ops/reduce.h"

namespace loom {

Tensor rms_norm(const Tensor& x, const Shape& normalized_shape, const Tensor& weight, std::optional<double> eps) {
  const int64_t k = int64_t(normalized_shape.size());
  LOOM_CHECK(k >= 1 && x.dim() >= k && std::equal(normalized_shape.begin(), normalized_shape.end(), x.shape().end() - k),
             "rms_norm: normalized_shape ", nn::py_tuple(normalized_shape), " must match the last dims of the input ", x.shape());
  LOOM_CHECK(is_floating(x.dtype()), "rms_norm: expected a floating point input, got ", x.dtype());
  if (weight.defined())
    LOOM_CHECK(weight.shape() == normalized_shape, "rms_norm: weight must have shape normalized_shape ",
               nn::py_tuple(normalized_shape), ", got ", weight.shape());
  const double e = eps ? *eps : (x.dtype() == DType::f64 ? std::numeric_limits<double>::epsilon()
                                                         : double(std::numeric_limits<float>::epsilon()));
  Shape dims;
  for (int64_t d = x.dim() - k; d < x.dim(); ++d) dims.push_back(d);
  Tensor y = x * rsqrt(mean(x * x, dims, true) + e);
  return weight.defined() ? y * weight : y;
}

}  // namespace loom

namespace loom::nn {

RMSNorm::RMSNorm(const RMSNormOptions& o) : options(o) {
  LOOM_CHECK(!o.normalized_shape.empty(), "RMSNorm: normalized_shape must name at least one dim");
  weight = register_parameter("weight", o.elementwise_affine ? empty(o.normalized_shape) : Tensor());
  reset_parameters();
}

void RMSNorm::reset_parameters() {
  if (weight.defined()) init::constant_(weight, 1.0);
}

Tensor RMSNorm::forward(const Tensor& x) { return rms_norm(x, options.normalized_shape, weight, options.eps); }

std::string RMSNorm::extra_repr() const {
  return py_tuple(options.normalized_shape) + ", eps=" + (options.eps ? py_float(*options.eps) : "None") +
         ", elementwise_affine=" + py_bool(options.elementwise_affine);
}

}  // namespace loom::nn
