// Gradient clipping, like torch.nn.utils.clip_grad_norm_ / clip_grad_value_.
//   loss.backward();
//   double norm = optim::clip_grad_norm_(model.parameters(), 1.0);   // returns the norm before clipping
//   opt.step();
#pragma once
#include <limits>
#include <vector>

#include "loom/core/tensor.h"

namespace loom::optim {

// Scales all gradients together so that their joint p-norm (over every element of every .grad) is at most
// max_norm: g *= max_norm / (total + 1e-6) when that factor is below 1. Returns the total norm before
// clipping. norm_type is any p > 0 or infinity (the largest |g|). Parameters without .grad are ignored;
// with none at all the norm is 0. error_if_nonfinite throws when the total norm is NaN or infinite.
double clip_grad_norm_(const std::vector<Tensor>& params, double max_norm, double norm_type = 2.0,
                       bool error_if_nonfinite = false);
inline double clip_grad_norm_(const Tensor& param, double max_norm, double norm_type = 2.0) {
  return clip_grad_norm_(std::vector<Tensor>{param}, max_norm, norm_type);
}

// Clamps every gradient element into [-clip_value, clip_value].
void clip_grad_value_(const std::vector<Tensor>& params, double clip_value);

constexpr double kInf = std::numeric_limits<double>::infinity();  // norm_type for the max norm

}  // namespace loom::optim
