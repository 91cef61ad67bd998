// PyTorch parity for core ops: same inputs give the same outputs and input gradients (float32).
#include <gtest/gtest.h>

#include "loom/loom.h"
#include "support/torch_oracle.h"

using namespace loom;
using loom::test::torch_run;

namespace {

// Runs a unary op in loom and the same torch expression, comparing value and input gradient.
void check_unary(const std::string& expr, const std::function<Tensor(const Tensor&)>& f, double lo = -2, double hi = 2) {
  manual_seed(7);
  Tensor x = (rand({3, 5}) * (hi - lo) + lo).requires_grad_(true);
  Tensor g = randn({3, 5});
  Tensor y = f(x);
  y.backward(g);
  auto r = torch_run("y = " + expr + "\ny.backward(g)\nout['y'] = y\nout['gx'] = x.grad", {{"x", x.detach(), true}, {"g", g}});
  EXPECT_PARITY(expr + " value", y, r["y"]);
  EXPECT_PARITY(expr + " grad", x.grad(), r["gx"]);
}

}  // namespace

TEST(ParityOps, Unary) {
  check_unary("torch.exp(x)", [](const Tensor& x) { return exp(x); });
  check_unary("torch.log(x)", [](const Tensor& x) { return log(x); }, 0.1, 3);
  check_unary("torch.log1p(x)", [](const Tensor& x) { return log1p(x); }, 0.1, 3);
  check_unary("torch.sqrt(x)", [](const Tensor& x) { return sqrt(x); }, 0.1, 3);
  check_unary("torch.rsqrt(x)", [](const Tensor& x) { return rsqrt(x); }, 0.1, 3);
  check_unary("torch.sin(x)", [](const Tensor& x) { return sin(x); });
  check_unary("torch.cos(x)", [](const Tensor& x) { return cos(x); });
  check_unary("torch.tanh(x)", [](const Tensor& x) { return tanh(x); });
  check_unary("torch.sigmoid(x)", [](const Tensor& x) { return sigmoid(x); });
  check_unary("torch.relu(x)", [](const Tensor& x) { return relu(x); });
  check_unary("F.gelu(x)", [](const Tensor& x) { return gelu(x); });
  check_unary("F.gelu(x, approximate='tanh')", [](const Tensor& x) { return gelu(x, "tanh"); });
  check_unary("F.silu(x)", [](const Tensor& x) { return silu(x); });
  check_unary("F.leaky_relu(x, 0.1)", [](const Tensor& x) { return leaky_relu(x, 0.1); });
  check_unary("F.elu(x, 0.7)", [](const Tensor& x) { return elu(x, 0.7); });
  check_unary("F.softplus(x, 2.0, 3.0)", [](const Tensor& x) { return softplus(x, 2.0, 3.0); });
  check_unary("torch.abs(x)", [](const Tensor& x) { return abs(x); });
  check_unary("-x", [](const Tensor& x) { return -x; });
  check_unary("x.pow(3.0)", [](const Tensor& x) { return pow(x, 3.0); });
  check_unary("x.clamp(-0.5, 0.7)", [](const Tensor& x) { return clamp(x, -0.5, 0.7); });
  check_unary("torch.erf(x)", [](const Tensor& x) { return erf(x); });
}

TEST(ParityOps, BinaryBroadcast) {
  manual_seed(3);
  Tensor a = randn({4, 1, 3}).requires_grad_(true), b = (rand({5, 1}) + 0.5).requires_grad_(true);
  Tensor g = randn({4, 5, 3});
  Tensor y = a * b + a / b - maximum(a, b) + pow(b, a) - minimum(a, b * 0.5);
  y.backward(g);
  auto r = torch_run(
      "y = a * b + a / b - torch.maximum(a, b) + torch.pow(b, a) - torch.minimum(a, b * 0.5)\n"
      "y.backward(g)\nout['y'] = y; out['ga'] = a.grad; out['gb'] = b.grad",
      {{"a", a.detach(), true}, {"b", b.detach(), true}, {"g", g}});
  EXPECT_PARITY("y", y, r["y"]);
  EXPECT_PARITY("ga", a.grad(), r["ga"]);
  EXPECT_PARITY("gb", b.grad(), r["gb"]);
}

TEST(ParityOps, ReductionsAndSoftmax) {
  manual_seed(5);
  Tensor x = randn({3, 4, 5}).requires_grad_(true);
  Tensor y = sum(x, {1}) + mean(x, {1}) * 2.0 + var(x, {1}) + loom::std(x, {1}, 0) + logsumexp(x, {1}) +
             softmax(x, 1).sum({1}) + log_softmax(x, 2).mean({1}) + amax(x, {1}) + max(x, 1).first;
  Tensor g = randn({3, 5});
  y.backward(g);
  auto r = torch_run(
      "y = x.sum(1) + x.mean(1) * 2 + x.var(1) + x.std(1, unbiased=False) + torch.logsumexp(x, 1) + "
      "torch.softmax(x, 1).sum(1) + torch.log_softmax(x, 2).mean(1) + torch.amax(x, 1) + x.max(1).values\n"
      "y.backward(g)\nout['y'] = y; out['gx'] = x.grad",
      {{"x", x.detach(), true}, {"g", g}});
  EXPECT_PARITY("y", y, r["y"]);
  EXPECT_PARITY("gx", x.grad(), r["gx"]);
}

TEST(ParityOps, MatmulBatchBroadcast) {
  manual_seed(9);
  Tensor a = randn({2, 1, 3, 7}).requires_grad_(true), b = randn({5, 7, 4}).requires_grad_(true);
  Tensor g = randn({2, 5, 3, 4});
  Tensor y = matmul(a, b);
  y.backward(g);
  auto r = torch_run("y = torch.matmul(a, b); y.backward(g); out['y'] = y; out['ga'] = a.grad; out['gb'] = b.grad",
                     {{"a", a.detach(), true}, {"b", b.detach(), true}, {"g", g}});
  EXPECT_PARITY("y", y, r["y"]);
  EXPECT_PARITY("ga", a.grad(), r["ga"]);
  EXPECT_PARITY("gb", b.grad(), r["gb"]);
}

TEST(ParityOps, ViewsAndIndexing) {
  manual_seed(11);
  Tensor x = randn({4, 6}).requires_grad_(true);
  Tensor idx = tensor(std::vector<int64_t>{3, 0, 3}, {3});
  Tensor y = cat({x.t().slice(0, 1, 5, 2), x.narrow(1, 0, 2).t()}, 0).index_select(1, idx) * 2.0;
  Tensor g = randn(y.shape());
  y.backward(g);
  auto r = torch_run(
      "y = torch.cat([x.t()[1:5:2], x.narrow(1, 0, 2).t()], 0).index_select(1, idx) * 2\n"
      "y.backward(g); out['y'] = y; out['gx'] = x.grad",
      {{"x", x.detach(), true}, {"idx", idx}, {"g", g}});
  EXPECT_PARITY("y", y, r["y"]);
  EXPECT_PARITY("gx", x.grad(), r["gx"]);
}
