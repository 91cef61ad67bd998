// Core tensor behaviour: creation, views sharing storage, broadcasting, dtype promotion, printing.
#include <gtest/gtest.h>

#include <cmath>

#include "loom/loom.h"
#include "support/gradcheck.h"

using namespace loom;

TEST(Tensor, CreationAndItem) {
  Tensor z = zeros({2, 3});
  EXPECT_EQ(z.shape(), (Shape{2, 3}));
  EXPECT_EQ(z.numel(), 6);
  EXPECT_EQ(z.sum().item(), 0.0);
  EXPECT_EQ(ones({4}).sum().item(), 4.0);
  EXPECT_EQ(arange(5).dtype(), DType::i64);
  EXPECT_EQ(arange(5).sum().item(), 10.0);
  EXPECT_EQ(eye(3).sum().item(), 3.0);
  Tensor l = linspace(0, 1, 5);
  EXPECT_DOUBLE_EQ(l.tolist()[4], 1.0);
  EXPECT_DOUBLE_EQ(l.tolist()[1], 0.25);
  EXPECT_THROW(ones({2}).item(), Error);
}

TEST(Tensor, ViewsShareStorage) {
  Tensor x = arange(0.0, 6.0, 1.0).view({2, 3});
  Tensor t = x.t();
  EXPECT_FALSE(t.is_contiguous());
  EXPECT_EQ(t.shape(), (Shape{3, 2}));
  EXPECT_EQ(t.tolist(), (std::vector<double>{0, 3, 1, 4, 2, 5}));
  x.select(0, 1).fill_(7);
  EXPECT_EQ(x.tolist(), (std::vector<double>{0, 1, 2, 7, 7, 7}));
  EXPECT_EQ(x.slice(1, 0, 3, 2).tolist(), (std::vector<double>{0, 2, 7, 7}));
  EXPECT_EQ(x.reshape({-1}).shape(), (Shape{6}));
  EXPECT_THROW(t.view({6}), Error);
  EXPECT_EQ(t.reshape({6}).tolist(), (std::vector<double>{0, 7, 1, 7, 2, 7}));
}

TEST(Tensor, Broadcasting) {
  Tensor a = arange(0.0, 3.0, 1.0).view({3, 1});
  Tensor b = arange(0.0, 4.0, 1.0);
  Tensor c = a + b;
  EXPECT_EQ(c.shape(), (Shape{3, 4}));
  EXPECT_EQ(c.sum().item(), 4 * 3.0 + 3 * 6.0);
  EXPECT_THROW(ones({2, 3}) + ones({4}), Error);
}

TEST(Tensor, ErrorsNameOpAndShapes) {
  try {
    mm(ones({2, 3}), ones({4, 5}));
    FAIL();
  } catch (const Error& e) {
    std::string m = e.what();
    EXPECT_NE(m.find("mm"), std::string::npos);
    EXPECT_NE(m.find("[2, 3]"), std::string::npos);
    EXPECT_NE(m.find("[4, 5]"), std::string::npos);
  }
}

TEST(Tensor, Printing) {
  EXPECT_EQ(to_string(tensor({1.0, 2.0, 3.5})), "tensor([1.0000, 2.0000, 3.5000])");
  EXPECT_EQ(to_string(tensor({1.0, 2.0})), "tensor([1., 2.])");
  EXPECT_EQ(to_string(arange(3)), "tensor([0, 1, 2])");
}

TEST(Autograd, SimpleChain) {
  Tensor x = tensor({1.0, 2.0, 3.0}, {3}, {.dtype = DType::f64, .requires_grad = true});
  Tensor y = (x * x + x * 2.0).sum();
  y.backward();
  EXPECT_EQ(x.grad().tolist(), (std::vector<double>{4, 6, 8}));
}

TEST(Autograd, InplaceModifiedSavedTensorThrows) {
  Tensor x = tensor({1.0, 2.0}, {2}, {.requires_grad = true});
  Tensor y = x * 1.0;
  Tensor z = y.exp();
  z.mul_(2.0);  // exp saved its output z
  EXPECT_THROW(z.sum().backward(), Error);
}

TEST(Gradcheck, ElementwiseBroadcast) {
  using test::rand64;
  EXPECT_GRADCHECK([](const std::vector<Tensor>& in) { return tanh(in[0] * in[1]) + in[0] / (in[1] * in[1] + 1.0); },
                   {rand64({3, 4}), rand64({4})});
}

TEST(Gradcheck, CatchesAWrongBackward) {
  // An op whose recorded gradient is deliberately off by a factor of 2: gradcheck must reject it.
  auto bad_square = [](const std::vector<Tensor>& in) {
    Tensor x = in[0];
    Tensor y;
    {
      NoGradGuard g;
      y = x * x;
    }
    autograd::record("BadSquare", {y}, {x}, [s = autograd::save(x)](const std::vector<Tensor>& g) {
      return std::vector<Tensor>{g[0] * s.get() * 4.0};
    });
    return y;
  };
  auto r = test::gradcheck(bad_square, {test::rand64({3})});
  EXPECT_FALSE(r.ok);
  EXPECT_NE(r.message.find("numerical"), std::string::npos);
}

TEST(Tensor, ReluPropagatesNaN) {
  // As in PyTorch: a NaN reaching a ReLU must stay visible, not be hidden as 0.
  Tensor y = relu(tensor({-1.0, std::nan(""), 2.0}));
  std::vector<double> v = y.tolist();
  EXPECT_EQ(v[0], 0.0);
  EXPECT_TRUE(std::isnan(v[1]));
  EXPECT_EQ(v[2], 2.0);
}
