// float64 finite-difference gradcheck for every differentiable core op, including broadcast and view cases.
#include <gtest/gtest.h>

#include "loom/loom.h"
#include "support/gradcheck.h"

using namespace loom;
using test::rand64;
using In = std::vector<Tensor>;

TEST(OpsGradcheck, UnaryOps) {
  manual_seed(1);
  Tensor x = rand64({2, 3});
  Tensor pos = rand64({2, 3}, 0.2, 2.0);
  EXPECT_GRADCHECK([](const In& i) { return neg(i[0]); }, {x});
  EXPECT_GRADCHECK([](const In& i) { return abs(i[0]); }, {x});
  EXPECT_GRADCHECK([](const In& i) { return exp(i[0]); }, {x});
  EXPECT_GRADCHECK([](const In& i) { return log(i[0]); }, {pos});
  EXPECT_GRADCHECK([](const In& i) { return log1p(i[0]); }, {pos});
  EXPECT_GRADCHECK([](const In& i) { return sqrt(i[0]); }, {pos});
  EXPECT_GRADCHECK([](const In& i) { return rsqrt(i[0]); }, {pos});
  EXPECT_GRADCHECK([](const In& i) { return sin(i[0]); }, {x});
  EXPECT_GRADCHECK([](const In& i) { return cos(i[0]); }, {x});
  EXPECT_GRADCHECK([](const In& i) { return tanh(i[0]); }, {x});
  EXPECT_GRADCHECK([](const In& i) { return sigmoid(i[0]); }, {x});
  EXPECT_GRADCHECK([](const In& i) { return relu(i[0]); }, {x});
  EXPECT_GRADCHECK([](const In& i) { return gelu(i[0]); }, {x});
  EXPECT_GRADCHECK([](const In& i) { return gelu(i[0], "tanh"); }, {x});
  EXPECT_GRADCHECK([](const In& i) { return silu(i[0]); }, {x});
  EXPECT_GRADCHECK([](const In& i) { return leaky_relu(i[0], 0.2); }, {x});
  EXPECT_GRADCHECK([](const In& i) { return elu(i[0], 0.5); }, {x});
  EXPECT_GRADCHECK([](const In& i) { return softplus(i[0], 2.0, 1.0); }, {x});
  EXPECT_GRADCHECK([](const In& i) { return square(i[0]); }, {x});
  EXPECT_GRADCHECK([](const In& i) { return erf(i[0]); }, {x});
  EXPECT_GRADCHECK([](const In& i) { return pow(i[0], 2.5); }, {pos});
  EXPECT_GRADCHECK([](const In& i) { return clamp(i[0], -0.3, 0.4); }, {x});
}

TEST(OpsGradcheck, BinaryOpsBroadcast) {
  manual_seed(2);
  Tensor a = rand64({3, 1, 4}), b = rand64({5, 1}), pb = rand64({5, 1}, 0.5, 2.0), pa = rand64({3, 1, 4}, 0.5, 2.0);
  EXPECT_GRADCHECK([](const In& i) { return i[0] + i[1]; }, {a, b});
  EXPECT_GRADCHECK([](const In& i) { return sub(i[0], i[1], 2.0); }, {a, b});
  EXPECT_GRADCHECK([](const In& i) { return i[0] * i[1]; }, {a, b});
  EXPECT_GRADCHECK([](const In& i) { return i[0] / i[1]; }, {a, pb});
  EXPECT_GRADCHECK([](const In& i) { return pow(i[0], i[1]); }, {pa, b});
  EXPECT_GRADCHECK([](const In& i) { return maximum(i[0], i[1]); }, {a, b});
  EXPECT_GRADCHECK([](const In& i) { return minimum(i[0], i[1]); }, {a, b});
  EXPECT_GRADCHECK([](const In& i) { return where(i[0] > 0.0, i[0], i[1]); }, {a, b});
  EXPECT_GRADCHECK([](const In& i) { return masked_fill(i[0], i[0] > 0.2, 3.0); }, {a});
  EXPECT_GRADCHECK([](const In& i) { return 2.0 / (i[0] * i[0] + 1.0) - 3.0; }, {a});
}

TEST(OpsGradcheck, Reductions) {
  manual_seed(3);
  Tensor x = rand64({3, 4, 5});
  EXPECT_GRADCHECK([](const In& i) { return sum(i[0]); }, {x});
  EXPECT_GRADCHECK([](const In& i) { return sum(i[0], {0, 2}, true); }, {x});
  EXPECT_GRADCHECK([](const In& i) { return mean(i[0], {-1}); }, {x});
  EXPECT_GRADCHECK([](const In& i) { return prod(i[0], {1}); }, {x});
  EXPECT_GRADCHECK([](const In& i) { return amax(i[0], {1}); }, {x});
  EXPECT_GRADCHECK([](const In& i) { return amin(i[0], {0, 2}); }, {x});
  EXPECT_GRADCHECK([](const In& i) { return max(i[0], 2).first; }, {x});
  EXPECT_GRADCHECK([](const In& i) { return min(i[0], 0, true).first; }, {x});
  EXPECT_GRADCHECK([](const In& i) { return var(i[0], {1}); }, {x});
  EXPECT_GRADCHECK([](const In& i) { return loom::std(i[0], {0, 2}, 0); }, {x});
  EXPECT_GRADCHECK([](const In& i) { return logsumexp(i[0], {2}); }, {x});
  EXPECT_GRADCHECK([](const In& i) { return softmax(i[0], 1); }, {x});
  EXPECT_GRADCHECK([](const In& i) { return log_softmax(i[0], -1); }, {x});
  EXPECT_GRADCHECK([](const In& i) { return norm(i[0]); }, {x});
}

TEST(OpsGradcheck, ViewsAndShapes) {
  manual_seed(4);
  Tensor x = rand64({4, 6});
  EXPECT_GRADCHECK([](const In& i) { return i[0].view({2, 12}) * 2.0; }, {x});
  EXPECT_GRADCHECK([](const In& i) { return i[0].t().reshape({-1}); }, {x});
  EXPECT_GRADCHECK([](const In& i) { return i[0].permute({1, 0}).contiguous(); }, {x});
  EXPECT_GRADCHECK([](const In& i) { return i[0].slice(1, 1, 6, 2); }, {x});
  EXPECT_GRADCHECK([](const In& i) { return i[0].narrow(0, 1, 2); }, {x});
  EXPECT_GRADCHECK([](const In& i) { return i[0].select(1, -1); }, {x});
  EXPECT_GRADCHECK([](const In& i) { return i[0].unsqueeze(1).expand({4, 3, 6}); }, {x});
  EXPECT_GRADCHECK([](const In& i) { return i[0].unsqueeze(0).squeeze(0).flatten(); }, {x});
  EXPECT_GRADCHECK([](const In& i) { return cat({i[0], i[0].slice(0, 0, 2) * 3.0}, 0); }, {x});
  EXPECT_GRADCHECK([](const In& i) { return stack({i[0], i[0].exp()}, 1); }, {x});
  EXPECT_GRADCHECK([](const In& i) { auto p = i[0].split(4, 1); return p[0].sum({1}) * p[1].sum({1}); }, {x});
  EXPECT_GRADCHECK([](const In& i) { auto p = i[0].chunk(3, 0); EXPECT_EQ(p.size(), 2u); return p[0] * p[1].t().t(); }, {x});
  // A view of a view of a transposed tensor, then math through the strided layout.
  EXPECT_GRADCHECK([](const In& i) { return (i[0].t().slice(0, 1, 5).select(1, 2) * 2.0).exp(); }, {x});
}

TEST(OpsGradcheck, MatmulFamilies) {
  manual_seed(5);
  EXPECT_GRADCHECK([](const In& i) { return mm(i[0], i[1]); }, {rand64({3, 5}), rand64({5, 2})});
  EXPECT_GRADCHECK([](const In& i) { return mm(i[0].t(), i[1].t()); }, {rand64({5, 3}), rand64({2, 5})});
  EXPECT_GRADCHECK([](const In& i) { return bmm(i[0], i[1]); }, {rand64({2, 3, 4}), rand64({2, 4, 3})});
  EXPECT_GRADCHECK([](const In& i) { return matmul(i[0], i[1]); }, {rand64({2, 1, 3, 4}), rand64({3, 4, 2})});
  EXPECT_GRADCHECK([](const In& i) { return matmul(i[0], i[1]); }, {rand64({4}), rand64({4})});
  EXPECT_GRADCHECK([](const In& i) { return matmul(i[0], i[1]); }, {rand64({4}), rand64({2, 4, 3})});
  EXPECT_GRADCHECK([](const In& i) { return matmul(i[0], i[1]); }, {rand64({2, 3, 4}), rand64({4})});
  EXPECT_GRADCHECK([](const In& i) { return linear(i[0], i[1], i[2]); }, {rand64({2, 3, 4}), rand64({5, 4}), rand64({5})});
  EXPECT_GRADCHECK([](const In& i) { return linear(i[0], i[1]); }, {rand64({3, 4}), rand64({5, 4})});
}

TEST(OpsGradcheck, Indexing) {
  manual_seed(6);
  Tensor idx = tensor(std::vector<int64_t>{2, 0, 2, 1}, {4});
  Tensor gidx = tensor(std::vector<int64_t>{0, 2, 1, 1, 0, 0}, {3, 2});
  EXPECT_GRADCHECK([idx](const In& i) { return index_select(i[0], 0, idx); }, {rand64({3, 4})});
  EXPECT_GRADCHECK([idx](const In& i) { return index_select(i[0], 1, idx); }, {rand64({2, 3})});
  EXPECT_GRADCHECK([gidx](const In& i) { return gather(i[0], 1, gidx); }, {rand64({3, 4})});
  EXPECT_GRADCHECK([gidx](const In& i) { return scatter_add(i[0], 1, gidx, i[1]); }, {rand64({3, 4}), rand64({3, 2})});
  EXPECT_GRADCHECK([idx](const In& i) { return index_add(i[0], 0, idx, i[1]); }, {rand64({3, 2}), rand64({4, 2})});
}

TEST(OpsGradcheck, InplaceOnNonLeafRebasesHistory) {
  manual_seed(7);
  EXPECT_GRADCHECK([](const In& i) { Tensor y = i[0] * 2.0; y.relu_(); y.add_(i[1]); return y; },
                   {rand64({3, 4}), rand64({4})});
}
