// Parity with PyTorch: runs a Python snippet on Debian's python3-torch with the same inputs and
// returns its named results, computed when the test runs (nothing is stored).
//   auto r = torch_run("y = F.gelu(x); y.backward(g); out['y'] = y; out['gx'] = x.grad", {{"x", x, true}, {"g", g}});
//   expect_parity("gelu y", y, r["y"]);
#pragma once
#include <map>
#include <string>
#include <vector>

#include <gtest/gtest.h>

#include "loom/loom.h"

namespace loom::test {

struct Arg {
  std::string name;
  Tensor value;
  bool requires_grad = false;
};

// Throws loom::Error with Python's traceback if the snippet fails.
std::map<std::string, Tensor> torch_run(const std::string& code, const std::vector<Arg>& inputs);

// |a - b| <= rtol * (|b| + max|b|) elementwise; on failure names `what` and the worst element.
::testing::AssertionResult parity_close(const Tensor& a, const Tensor& b, double rtol = 1e-5);

}  // namespace loom::test

#define EXPECT_PARITY(name, ours, theirs, ...) EXPECT_TRUE(::loom::test::parity_close(ours, theirs, ##__VA_ARGS__)) << name
