// Matrix products, like torch.matmul (batch dims broadcast) and F.linear.
//   Tensor y = loom::matmul(a, b);         // (B, M, K) @ (K, N) -> (B, M, N)
//   Tensor z = loom::linear(x, w, bias);   // x @ w.T + bias, w is (out, in) as in PyTorch
#pragma once
#include "loom/core/tensor.h"

namespace loom {

Tensor matmul(const Tensor& a, const Tensor& b);
Tensor mm(const Tensor& a, const Tensor& b);
Tensor bmm(const Tensor& a, const Tensor& b);
Tensor linear(const Tensor& x, const Tensor& weight, const Tensor& bias = {});

}  // namespace loom
