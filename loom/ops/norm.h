// Normalisation ops, like torch.nn.functional.batch_norm / layer_norm / group_norm. Each has one fused
// forward and one fused backward (they sit on every CNN and transformer's hot path).
//   Tensor y = loom::batch_norm(x, running_mean, running_var, weight, bias, /*training=*/true, 0.1, 1e-5);
//   Tensor z = loom::layer_norm(h, {768}, gamma, beta);          // normalises the last dims
//   Tensor u = loom::group_norm(x, /*num_groups=*/4, weight, bias);
#pragma once
#include "loom/core/tensor.h"

namespace loom {

// x is (N, C) or (N, C, *). Training normalises with the batch statistics (biased variance) and, when
// running_mean/running_var are defined, updates them in place: r = (1 - momentum) * r + momentum * stat,
// with the unbiased variance. Eval (training == false) normalises with the running statistics.
// weight/bias (C) are optional; PyTorch's argument order.
Tensor batch_norm(const Tensor& x, const Tensor& running_mean, const Tensor& running_var, const Tensor& weight = {},
                  const Tensor& bias = {}, bool training = false, double momentum = 0.1, double eps = 1e-5);

// Normalises over the trailing dims given by normalized_shape; weight/bias have that shape (optional).
Tensor layer_norm(const Tensor& x, const Shape& normalized_shape, const Tensor& weight = {}, const Tensor& bias = {},
                  double eps = 1e-5);

// x is (N, C, *); channels split into num_groups groups normalised separately; weight/bias are (C).
Tensor group_norm(const Tensor& x, int64_t num_groups, const Tensor& weight = {}, const Tensor& bias = {},
                  double eps = 1e-5);

}  // namespace loom
