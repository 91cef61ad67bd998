// Autograd engine behaviour: accumulation, retain_graph, no_grad, detach, retain_grad, errors like PyTorch's.
#include <gtest/gtest.h>

#include "loom/loom.h"

using namespace loom;

TEST(Autograd, GradientsAccumulateIntoLeaves) {
  Tensor x = tensor({1.0, 2.0}, {2}, {.requires_grad = true});
  (x * 3.0).sum().backward();
  (x * x).sum().backward();
  EXPECT_EQ(x.grad().tolist(), (std::vector<double>{5.0, 7.0}));
}

TEST(Autograd, DiamondGraphSumsBothPaths) {
  Tensor x = tensor({2.0}, {1}, {.requires_grad = true});
  Tensor a = x * 3.0;
  Tensor y = a * a + a;  // dy/dx = (2a + 1) * 3
  y.sum().backward();
  EXPECT_DOUBLE_EQ(x.grad().item(), (2 * 6.0 + 1) * 3);
}

TEST(Autograd, SecondBackwardNeedsRetainGraph) {
  Tensor x = tensor({1.0, 2.0}, {2}, {.requires_grad = true});
  Tensor y = (x.exp() * x).sum();
  y.backward({}, /*retain_graph=*/true);
  y.backward();
  Tensor z = (x.exp() * x).sum();
  z.backward();
  EXPECT_THROW(z.backward(), Error);
}

TEST(Autograd, NoGradGuardAndDetach) {
  Tensor x = tensor({1.0}, {1}, {.requires_grad = true});
  {
    NoGradGuard g;
    Tensor y = x * 2.0;
    EXPECT_FALSE(y.requires_grad());
  }
  Tensor d = (x * 2.0).detach();
  EXPECT_FALSE(d.requires_grad());
  EXPECT_TRUE(d.is_leaf());
}

TEST(Autograd, RetainGradOnNonLeaf) {
  Tensor x = tensor({1.0, -1.0}, {2}, {.requires_grad = true});
  Tensor h = x * 2.0;
  h.retain_grad();
  (h * h).sum().backward();
  EXPECT_EQ(h.grad().tolist(), (std::vector<double>{4.0, -4.0}));
  EXPECT_EQ(x.grad().tolist(), (std::vector<double>{8.0, -8.0}));
}

TEST(Autograd, LeafInplaceIsAnError) {
  Tensor x = tensor({1.0}, {1}, {.requires_grad = true});
  EXPECT_THROW(x.add_(1.0), Error);
  {
    NoGradGuard g;
    x.add_(1.0);  // allowed without grad, as optimizers do
  }
  EXPECT_DOUBLE_EQ(x.item(), 2.0);
}

TEST(Autograd, ModifiedSavedTensorErrorMessage) {
  Tensor x = tensor({1.0, 2.0}, {2}, {.requires_grad = true});
  Tensor a = x + 0.0;
  Tensor y = a * a;  // saves a
  a.mul_(2.0);
  try {
    y.sum().backward();
    FAIL() << "expected an error";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("modified by an inplace operation"), std::string::npos) << e.what();
  }
}

TEST(Autograd, NonScalarBackwardNeedsGradient) {
  Tensor x = tensor({1.0, 2.0}, {2}, {.requires_grad = true});
  EXPECT_THROW((x * 2.0).backward(), Error);
  (x * 2.0).backward(ones({2}));
  EXPECT_EQ(x.grad().tolist(), (std::vector<double>{2.0, 2.0}));
}

TEST(Autograd, GradThroughViewsReachesBase) {
  Tensor x = zeros({3, 4}, {.requires_grad = true});
  Tensor y = x.t().select(0, 1).sum() + x.slice(1, 2, 4).sum() * 2.0;
  y.backward();
  std::vector<double> want = {0, 1, 2, 2, 0, 1, 2, 2, 0, 1, 2, 2};
  EXPECT_EQ(x.grad().tolist(), want);
}

TEST(Autograd, IntegerOutputsCarryNoGrad) {
  Tensor x = randn({3, 4}, {.requires_grad = true});
  auto [v, i] = x.max(1);
  EXPECT_TRUE(v.requires_grad());
  EXPECT_FALSE(i.requires_grad());
  EXPECT_EQ(i.dtype(), DType::i64);
}
