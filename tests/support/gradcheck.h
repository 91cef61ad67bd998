// Finite-difference gradient check in float64 (central differences), like torch.autograd.gradcheck.
//   EXPECT_GRADCHECK([](const std::vector<Tensor>& in) { return loom::tanh(in[0] * in[1]); }, {a, b});
// The scalar checked is sum(f(inputs) * R) for a fixed random R, so every output element contributes.
#pragma once
#include <functional>
#include <string>
#include <vector>

#include <gtest/gtest.h>

#include "loom/loom.h"

namespace loom::test {

using Fn = std::function<Tensor(const std::vector<Tensor>&)>;

struct GradcheckResult {
  bool ok = true;
  std::string message;
};

// Inputs are converted to f64; those with requires_grad are checked. eps/atol/rtol as in PyTorch.
GradcheckResult gradcheck(const Fn& f, std::vector<Tensor> inputs, double eps = 1e-6, double atol = 1e-5, double rtol = 1e-3);

// A float64 tensor with values in [lo, hi) that requires grad.
Tensor rand64(const Shape& s, double lo = -1.0, double hi = 1.0, bool requires_grad = true);

}  // namespace loom::test

#define EXPECT_GRADCHECK(...)                                               \
  do {                                                                      \
    auto _r = ::loom::test::gradcheck(__VA_ARGS__);                     \
    EXPECT_TRUE(_r.ok) << _r.message;                                       \
  } while (0)
