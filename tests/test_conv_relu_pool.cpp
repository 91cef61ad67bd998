// conv2d -> ReLU -> 2x2 max pool as one op (loom::conv2d_relu_max_pool2d: conv_direct.cpp's per-sample
// epilogue and conv_wgrad_direct.cpp's rebuilt output gradient) against the composition it replaces: the same
// values to the bit, weight and bias gradients to float summation order; the paths that must compose instead
// (input needing a gradient, float64, no AVX-512, shapes the kernels do not take) and Sequential's fusion of a
// first Conv2d -> ReLU -> MaxPool2d (hooks respected).
#include <gtest/gtest.h>

#include <cmath>
#include <cstdio>
#include <cstring>
#include <string>
#include <vector>

#include "loom/backend/cpu/isa.h"
#include "loom/loom.h"

namespace loom {
namespace {

struct ForceBaseline {
  explicit ForceBaseline(bool on) { cpu::force_baseline_for_testing(on); }
  ~ForceBaseline() { cpu::force_baseline_for_testing(false); }
};

bool same_bits(const Tensor& a, const Tensor& b) {
  if (a.shape() != b.shape() || a.dtype() != b.dtype()) return false;
  const Tensor ca = a.detach().contiguous(), cb = b.detach().contiguous();
  return std::memcmp(ca.raw_data(), cb.raw_data(), storage_nbytes(ca.dtype(), ca.numel())) == 0;
}

// max |a - b| <= tol * (1 + max |b|)
void expect_close(const Tensor& a, const Tensor& b, double tol, const char* what) {
  ASSERT_EQ(a.shape(), b.shape()) << what;
  const std::vector<double> va = a.detach().to(DType::f64).contiguous().reshape({-1}).tolist(),
                            vb = b.detach().to(DType::f64).contiguous().reshape({-1}).tolist();
  double scale = 1, worst = 0;
  for (size_t i = 0; i < vb.size(); ++i) scale = std::max(scale, 1 + std::fabs(vb[i]));
  for (size_t i = 0; i < va.size(); ++i) worst = std::max(worst, std::fabs(va[i] - vb[i]));
  EXPECT_LE(worst, tol * scale) << what;
}

std::string node_name(const Tensor& y) { return y.grad_fn() ? y.grad_fn()->name() : "(leaf)"; }

struct Case {
  int64_t N, C, HW, OC, k, pad;
};

// The fused op and the composition on the same inputs: forward bits, then dW / db for one upstream gradient.
void compare(const Case& c, DType dt, const std::string& want_node) {
  SCOPED_TRACE("N" + std::to_string(c.N) + " C" + std::to_string(c.C) + " " + std::to_string(c.HW) + " OC" +
               std::to_string(c.OC) + " k" + std::to_string(c.k) + " pad" + std::to_string(c.pad));
  manual_seed(11);
  const Tensor x = randn({c.N, c.C, c.HW, c.HW}).to(dt);
  const Tensor w0 = (randn({c.OC, c.C, c.k, c.k}) * 0.3).to(dt), b0 = (randn({c.OC}) * 0.1).to(dt);
  const Conv2dArgs ca{.padding = {c.pad, c.pad}};
  const Pool2dArgs pa{.kernel_size = {2, 2}};
  Tensor w1 = w0.clone().requires_grad_(true), b1 = b0.clone().requires_grad_(true);
  Tensor w2 = w0.clone().requires_grad_(true), b2 = b0.clone().requires_grad_(true);
  const Tensor fused = conv2d_relu_max_pool2d(x, w1, b1, ca, pa);
  const Tensor plain = max_pool2d(relu(conv2d(x, w2, b2, ca)), pa);
  EXPECT_EQ(node_name(fused), want_node);
  EXPECT_TRUE(same_bits(fused, plain));
  const Tensor up = randn(plain.shape()).to(dt);
  (fused * up).sum().backward();
  (plain * up).sum().backward();
  expect_close(w1.grad(), w2.grad(), 1e-5, "dW");
  expect_close(b1.grad(), b2.grad(), 1e-5, "db");
}

TEST(ConvReluPool, FusedOpMatchesTheComposition) {
  const std::string fused_node = cpu::has_avx512() ? "Conv2dReluMaxPool2dBackward" : "MaxPool2dBackward";
  if (!cpu::has_avx512()) std::printf("skipped: the fused kernels need AVX-512 (%s)\n", cpu::isa_reason(false).c_str());
  compare({.N = 6, .C = 1, .HW = 28, .OC = 32, .k = 3, .pad = 0}, DType::f32, fused_node);  // the seed CNN's first layer
  compare({.N = 5, .C = 1, .HW = 27, .OC = 7, .k = 3, .pad = 0}, DType::f32, fused_node);   // odd: last row dropped
  compare({.N = 3, .C = 3, .HW = 20, .OC = 16, .k = 3, .pad = 1}, DType::f32, fused_node);  // padded, 27 taps
  compare({.N = 1, .C = 1, .HW = 28, .OC = 6, .k = 5, .pad = 2}, DType::f32, fused_node);   // LeNet's, one sample
}

TEST(ConvReluPool, ComposesWhereTheKernelsDoNotApply) {
  // float64, and a layer with 64 output channels (its dW belongs to the GEMM): the composition's own nodes.
  compare({.N = 2, .C = 1, .HW = 12, .OC = 4, .k = 3, .pad = 0}, DType::f64, "MaxPool2dBackward");
  const std::string pool_node = cpu::has_avx512() ? "ReluMaxPool2dBackward" : "MaxPool2dBackward";
  compare({.N = 2, .C = 4, .HW = 15, .OC = 64, .k = 3, .pad = 0}, DType::f32, pool_node);
  {
    ForceBaseline off(true);
    compare({.N = 2, .C = 1, .HW = 28, .OC = 8, .k = 3, .pad = 0}, DType::f32, "MaxPool2dBackward");
  }
  // An input that needs a gradient: composed, and dx flows.
  manual_seed(3);
  Tensor x = randn({2, 1, 14, 14}).requires_grad_(true), w = randn({8, 1, 3, 3}).requires_grad_(true);
  Tensor y = conv2d_relu_max_pool2d(x, w, Tensor(), {}, {.kernel_size = {2, 2}});
  EXPECT_NE(node_name(y), "Conv2dReluMaxPool2dBackward");
  y.sum().backward();
  ASSERT_TRUE(x.grad().defined());
  EXPECT_GT(x.grad().abs().sum().item<double>(), 0.0);
}

TEST(ConvReluPool, BadArgumentsGetTheConvolutionsErrors) {
  const Tensor x = randn({2, 3, 8, 8}), w = randn({4, 2, 3, 3});
  try {
    conv2d_relu_max_pool2d(x, w, Tensor(), {}, {});
    FAIL() << "expected an error";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("conv2d: expected input (N, C, H, W) with C = 2"), std::string::npos)
        << e.what();
  }
}

TEST(ConvReluPool, SequentialFusesTheFirstConvReluPool) {
  manual_seed(5);
  auto make = [] {
    return std::make_shared<nn::Sequential>(std::initializer_list<nn::ModulePtr>{
        std::make_shared<nn::Conv2d>(nn::Conv2dOptions{.in = 1, .out = 8, .kernel_size = 3}),
        std::make_shared<nn::ReLU>(), std::make_shared<nn::MaxPool2d>(nn::MaxPool2dOptions{.kernel_size = 2}),
        std::make_shared<nn::Conv2d>(nn::Conv2dOptions{.in = 8, .out = 4, .kernel_size = 3}),
        std::make_shared<nn::ReLU>(), std::make_shared<nn::MaxPool2d>(nn::MaxPool2dOptions{.kernel_size = 2})});
  };
  auto fused = make(), hooked = make();
  hooked->load_state_dict(fused->state_dict());
  int calls = 0;  // a hook on the first conv must see its own output: no fusion there
  (*hooked)[0]->register_forward_hook([&](nn::Module&, const Tensor&, const Tensor& out) {
    ++calls;
    EXPECT_EQ(out.shape(), (Shape{3, 8, 26, 26}));
  });
  const Tensor x = randn({3, 1, 28, 28});
  {  // the first three modules alone end in the fused node
    nn::Sequential first{(*fused)[0], (*fused)[1], (*fused)[2]};
    EXPECT_EQ(node_name(first(x)), cpu::has_avx512() ? "Conv2dReluMaxPool2dBackward" : "MaxPool2dBackward");
    EXPECT_NE(node_name(first(x.detach().requires_grad_(true))), "Conv2dReluMaxPool2dBackward");
  }
  const Tensor a = (*fused)(x), b = (*hooked)(x);
  EXPECT_EQ(calls, 1);
  if (cpu::has_avx512()) {
    // The fused net's graph has the fused node where the hooked one has the conv and the pair.
    EXPECT_TRUE(same_bits(a, b));
  } else {
    expect_close(a, b, 1e-6, "output");
  }
  a.sum().backward();
  b.sum().backward();
  const auto pa = fused->parameters(), pb = hooked->parameters();
  ASSERT_EQ(pa.size(), pb.size());
  for (size_t i = 0; i < pa.size(); ++i) expect_close(pa[i].grad(), pb[i].grad(), 1e-5, "parameter gradient");
}

}  // namespace
}  // namespace loom
