// nn::init: gains and fans, the distributions of the initialisers (PyTorch's formulas), and the default
// initialisation of the layers (kaiming_uniform_(a = sqrt(5)) bounds, N(0, 1) embeddings, norm ones/zeros).
#include <gtest/gtest.h>

#include <cmath>

#include "loom/loom.h"

using namespace loom;

TEST(NNInit, GainsAndFans) {
  EXPECT_DOUBLE_EQ(nn::init::calculate_gain("relu"), std::sqrt(2.0));
  EXPECT_DOUBLE_EQ(nn::init::calculate_gain("tanh"), 5.0 / 3.0);
  EXPECT_DOUBLE_EQ(nn::init::calculate_gain("leaky_relu", 0.2), std::sqrt(2.0 / 1.04));
  EXPECT_DOUBLE_EQ(nn::init::calculate_gain("conv2d"), 1.0);
  EXPECT_THROW(nn::init::calculate_gain("swish"), Error);
  auto [in, out] = nn::init::calculate_fan_in_and_fan_out(zeros({8, 3, 5, 5}));
  EXPECT_EQ(in, 75);
  EXPECT_EQ(out, 200);
  EXPECT_THROW(nn::init::calculate_fan_in_and_fan_out(zeros({4})), Error);
}

TEST(NNInit, DistributionsFollowPyTorchFormulas) {
  manual_seed(3);
  // kaiming_uniform_(a = sqrt(5)) on a (64, 400) weight: U(-1/20, 1/20).
  Tensor w = zeros({64, 400});
  nn::init::kaiming_uniform_(w, std::sqrt(5.0));
  EXPECT_LE(max(abs(w)).item(), 0.05);
  EXPECT_GT(max(abs(w)).item(), 0.049);
  // kaiming_normal_(fan_out, relu): std sqrt(2 / fan_out).
  Tensor c = zeros({128, 64, 3, 3});
  nn::init::kaiming_normal_(c, 0.0, "fan_out", "relu");
  EXPECT_NEAR(loom::std(c).item(), std::sqrt(2.0 / (128 * 9)), 0.002);
  EXPECT_NEAR(mean(c).item(), 0.0, 0.002);
  Tensor x = zeros({300, 200});
  nn::init::xavier_uniform_(x, 2.0);
  const double a = 2.0 * std::sqrt(6.0 / 500.0);
  EXPECT_LE(max(abs(x)).item(), a);
  EXPECT_GT(max(abs(x)).item(), 0.99 * a);
  nn::init::xavier_normal_(x);
  EXPECT_NEAR(loom::std(x).item(), std::sqrt(2.0 / 500.0), 0.002);
  nn::init::constant_(x, 0.5);
  EXPECT_TRUE(equal(x, full({300, 200}, 0.5)));
  // Parameters that require grad are filled without autograd complaints, and stay leaves.
  nn::Linear fc({.in = 10, .out = 5});
  nn::init::zeros_(fc.bias);
  nn::init::normal_(fc.weight, 1.0, 0.0);
  EXPECT_TRUE(equal(fc.bias, zeros({5})));
  EXPECT_TRUE(equal(fc.weight, ones({5, 10})));
  EXPECT_TRUE(fc.weight.is_leaf());
  // A generator makes the fill reproducible.
  Generator g1(9), g2(9);
  Tensor u1 = nn::init::uniform_(zeros({20}), -1, 1, &g1), u2 = nn::init::uniform_(zeros({20}), -1, 1, &g2);
  EXPECT_TRUE(equal(u1, u2));
  EXPECT_THROW(nn::init::kaiming_uniform_(zeros({3, 3}), 0.0, "fan_sideways"), Error);
}

TEST(NNInit, LayerDefaultsMatchPyTorch) {
  manual_seed(4);
  nn::Linear fc({.in = 400, .out = 300});
  EXPECT_LE(max(abs(fc.weight)).item(), 0.05);
  EXPECT_GT(max(abs(fc.weight)).item(), 0.049);
  EXPECT_LE(max(abs(fc.bias)).item(), 0.05);
  nn::Conv2d conv({.in = 8, .out = 16, .kernel_size = 5, .groups = 2});  // fan_in = 4 * 25 = 100
  EXPECT_LE(max(abs(conv.weight)).item(), 0.1);
  EXPECT_GT(max(abs(conv.weight)).item(), 0.097);
  nn::Embedding emb({.num_embeddings = 500, .embedding_dim = 40, .padding_idx = -1});
  EXPECT_EQ(*emb.options.padding_idx, 499);
  EXPECT_NEAR(loom::std(emb.weight).item(), 1.0, 0.03);
  EXPECT_TRUE(equal(emb.weight.select(0, 499), zeros({40})));
  nn::BatchNorm2d bn({.num_features = 3});
  EXPECT_TRUE(equal(bn.weight, ones({3})) && equal(bn.bias, zeros({3})) && equal(bn.running_var, ones({3})));
  nn::LayerNorm ln({.normalized_shape = {2, 3}});
  EXPECT_EQ(ln.weight.shape(), (Shape{2, 3}));
  EXPECT_TRUE(equal(ln.weight, ones({2, 3})));
}
