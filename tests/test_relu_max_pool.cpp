// The fused ReLU + 2x2 max pool: the AVX-512 kernel against the plain reference pair (relu, then the reference
// max pool and its backward, then relu's mask), the op against the composition it replaces on every path, a
// gradcheck, and Sequential's fusion of a ReLU -> MaxPool2d pair (same outputs and gradients, hooks respected).
#include <gtest/gtest.h>

#include <cmath>
#include <cstdio>
#include <cstring>
#include <limits>
#include <vector>

#include "loom/backend/cpu/isa.h"
#include "loom/backend/cpu/reference_conv.h"
#include "loom/backend/cpu/relu_max_pool_2x2.h"
#include "loom/loom.h"
#include "support/gradcheck.h"
#include "support/random_buffer.h"
#include "support/strict_backend.h"

namespace loom {
namespace {

struct ForceBaseline {
  explicit ForceBaseline(bool on) { cpu::force_baseline_for_testing(on); }
  ~ForceBaseline() { cpu::force_baseline_for_testing(false); }
};

bool same_bits(float a, float b) { return std::memcmp(&a, &b, sizeof a) == 0; }

// Same shape, dtype and bits (NaN included), on the host.
bool same_bits(const Tensor& a, const Tensor& b) {
  if (a.shape() != b.shape() || a.dtype() != b.dtype()) return false;
  const Tensor ca = a.detach().to(Device{}).contiguous(), cb = b.detach().to(Device{}).contiguous();
  return std::memcmp(ca.raw_data(), cb.raw_data(), storage_nbytes(ca.dtype(), ca.numel())) == 0;
}

// Values that exercise every rule: NaN (PyTorch's last-NaN-wins), -inf, exact ties, +0 / -0 and windows that
// are all negative (relu zeroes the output and the gradient).
std::vector<float> tricky_input(int64_t n, uint64_t seed) {
  auto x = test::random_buffer(n, seed);
  const float nan = std::numeric_limits<float>::quiet_NaN(), inf = std::numeric_limits<float>::infinity();
  for (int64_t i = 0; i < n; ++i) {
    const size_t k = size_t(i);
    if (i % 37 == 3) x[k] = nan;
    else if (i % 41 == 5) x[k] = -inf;
    else if (i % 29 == 7) x[k] = 0.0f;
    else if (i % 31 == 11) x[k] = -0.0f;
    else if (i % 23 == 2) x[k] = x[k - 1];  // a tie with the neighbouring tap
    else if (i % 13 == 4) x[k] = -std::fabs(x[k]);
  }
  return x;
}

PoolGeom geom_2x2(int64_t N, int64_t C, int64_t H, int64_t W) {
  return {.N = N, .C = C, .H = H, .W = W, .OH = H / 2, .OW = W / 2, .KH = 2, .KW = 2, .sh = 2, .sw = 2};
}

TEST(ReluMaxPoolKernel, MatchesReluThenReferencePool) {
  if (!cpu::has_avx512()) {
    std::printf("skipped: the fused relu + max pool kernel needs AVX-512 (%s)\n", cpu::isa_reason(false).c_str());
    return;
  }
  // W2's two layers (26x26, 11x11: an odd column and row no window reads), rows wider than 16 outputs, tiny.
  for (auto [H, W] : {std::pair<int64_t, int64_t>{26, 26}, {11, 11}, {7, 35}, {2, 2}, {5, 66}, {3, 3}, {4, 64}}) {
    SCOPED_TRACE(std::to_string(H) + "x" + std::to_string(W));
    const PoolGeom g = geom_2x2(2, 3, H, W);
    const int64_t nx = g.N * g.C * H * W, ny = g.N * g.C * g.OH * g.OW;
    const auto x = tricky_input(nx, uint64_t(H * 100 + W));
    auto gy = test::random_buffer(ny, 7);
    gy[1] = std::numeric_limits<float>::quiet_NaN();  // a NaN gradient reaches dx only where the window's max > 0

    // The reference pair: r = relu(x) (NaN kept, non-positive -> +0), pool r, then dx = pool' masked by r > 0.
    std::vector<float> r(static_cast<size_t>(nx)), y_ref(static_cast<size_t>(ny)), dr(static_cast<size_t>(nx)),
        dx_ref(static_cast<size_t>(nx));
    for (size_t i = 0; i < r.size(); ++i) r[i] = (x[i] > 0 || x[i] != x[i]) ? x[i] : 0.0f;
    std::vector<int64_t> idx(static_cast<size_t>(ny));
    ref::max_pool2d_forward(y_ref.data(), idx.data(), r.data(), g);
    ref::max_pool2d_backward(dr.data(), gy.data(), idx.data(), g);
    for (size_t i = 0; i < r.size(); ++i) dx_ref[i] = r[i] > 0 ? dr[i] : 0.0f;

    std::vector<float> y(static_cast<size_t>(ny)), dx(static_cast<size_t>(nx), -7.0f);  // -7: any element the backward skips shows
    std::vector<uint8_t> taps(static_cast<size_t>(ny));
    ASSERT_TRUE(cpu::relu_max_pool2d_2x2(y.data(), taps.data(), x.data(), g));
    ASSERT_TRUE(cpu::relu_max_pool2d_2x2_backward(dx.data(), gy.data(), taps.data(), g));
    for (int64_t i = 0; i < ny; ++i) {
      const size_t k = size_t(i);
      ASSERT_TRUE(same_bits(y[k], y_ref[k]) || (std::isnan(y[k]) && std::isnan(y_ref[k])))
          << "y[" << i << "] " << y[k] << " vs " << y_ref[k];
      if (y_ref[k] > 0) ASSERT_EQ(int64_t(taps[k]), idx[k] % W % 2 + (idx[k] / W % 2) * 2) << "tap " << i;
      else ASSERT_EQ(taps[k], cpu::kReluPoolNoGrad) << "tap " << i;
    }
    for (int64_t i = 0; i < nx; ++i) {
      const size_t k = size_t(i);
      ASSERT_TRUE(same_bits(dx[k], dx_ref[k]) || (std::isnan(dx[k]) && std::isnan(dx_ref[k])))
          << "dx[" << i << "] " << dx[k] << " vs " << dx_ref[k];
    }
  }
}

TEST(ReluMaxPoolKernel, RefusesOtherGeometries) {
  std::vector<float> buf(1024);
  std::vector<uint8_t> taps(256);
  PoolGeom g = geom_2x2(1, 1, 8, 8);
  g.KH = g.KW = 3;  // 3x3 windows, stride 2
  g.OH = g.OW = 3;
  EXPECT_FALSE(cpu::relu_max_pool2d_2x2(buf.data(), taps.data(), buf.data(), g));
  EXPECT_FALSE(cpu::relu_max_pool2d_2x2_backward(buf.data(), buf.data(), taps.data(), g));
  ForceBaseline forced(true);
  EXPECT_FALSE(cpu::relu_max_pool2d_2x2(buf.data(), taps.data(), buf.data(), geom_2x2(1, 1, 8, 8)));
}

// relu_max_pool2d(x) against max_pool2d(relu(x)): values and gradients bit for bit.
void expect_same_as_composition(const Tensor& x0, const Pool2dArgs& a) {
  Tensor x1 = x0.detach().requires_grad_(true), x2 = x0.detach().requires_grad_(true);
  Tensor y1 = relu_max_pool2d(x1, a), y2 = max_pool2d(relu(x2), a);
  ASSERT_EQ(y1.shape(), y2.shape());
  Tensor g = randn(y1.shape(), {.dtype = x0.dtype()});
  y1.backward(g);
  y2.backward(g);
  EXPECT_TRUE(same_bits(y1, y2)) << "values";
  EXPECT_TRUE(same_bits(x1.grad(), x2.grad())) << "gradients";
}

TEST(ReluMaxPoolOp, SameAsCompositionOnEveryPath) {
  manual_seed(3);
  const std::vector<float> v = tricky_input(2 * 5 * 13 * 27, 11);
  Tensor x = tensor(v).reshape({2, 5, 13, 27});
  for (bool baseline : {false, true}) {
    SCOPED_TRACE(baseline ? "baseline" : "dispatched");
    ForceBaseline forced(baseline);
    expect_same_as_composition(x, {});                                                // the fused kernel (f32)
    expect_same_as_composition(x.to(DType::f64), {});                                 // composed: f64
    expect_same_as_composition(x, {.kernel_size = {3, 3}, .stride = {2, 2}});         // composed: overlapping
    expect_same_as_composition(x, {.kernel_size = {2, 2}, .ceil_mode = true});        // composed: ceil_mode
    expect_same_as_composition(x.transpose(2, 3), {});                                // a strided input
    expect_same_as_composition(x.narrow(2, 0, 4), {.kernel_size = {2, 2}, .padding = {1, 1}});
  }
}

TEST(ReluMaxPoolOp, Gradcheck) {
  manual_seed(4);
  // Distinct values away from relu's kink and from ties, so the finite differences see one smooth piece.
  Tensor x = (randperm(2 * 3 * 6 * 7).to(DType::f64) * 0.1 - 2.05).reshape({2, 3, 6, 7}).requires_grad_(true);
  EXPECT_GRADCHECK([](const std::vector<Tensor>& in) { return relu_max_pool2d(in[0]); }, {x});
  // float32 runs the fused node: check it against float64 finite differences of the same function.
  Tensor x32 = x.detach().to(DType::f32).requires_grad_(true);
  Tensor w = randn({2, 3, 3, 3});
  (relu_max_pool2d(x32) * w).sum().backward();
  Tensor x64 = x.detach().requires_grad_(true);
  (max_pool2d(relu(x64)) * w.to(DType::f64)).sum().backward();
  EXPECT_TRUE(allclose(x32.grad().to(DType::f64), x64.grad(), 1e-6, 1e-6));
}

TEST(ReluMaxPoolOp, ErrorsNameTheOp) {
  try {
    relu_max_pool2d(randn({3, 4}));
    FAIL() << "expected an error";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("relu_max_pool2d: expected input (N, C, H, W)"), std::string::npos) << e.what();
  }
}

// A small CNN, run by Sequential (fused pairs) and layer by layer through each module's forward (unfused).
struct SmallCnn {
  std::shared_ptr<nn::Sequential> net;
  SmallCnn() {
    manual_seed(21);
    net = std::make_shared<nn::Sequential>(
        nn::Conv2d({.in = 2, .out = 4, .kernel_size = 3}), nn::ReLU(), nn::MaxPool2d({.kernel_size = 2}),
        nn::Conv2d({.in = 4, .out = 6, .kernel_size = 3}), nn::ReLU(), nn::MaxPool2d({.kernel_size = 2}),
        nn::Flatten(), nn::Linear({.in = 6 * 2 * 2, .out = 3}));
  }
  Tensor unfused(const Tensor& x) const {
    Tensor h = x;
    for (const auto& [name, m] : net->named_children()) h = m->forward(h);
    return h;
  }
  std::vector<Tensor> grads() const {
    std::vector<Tensor> g;
    for (auto& p : net->parameters()) g.push_back(p.grad().clone());
    return g;
  }
};

TEST(SequentialReluPool, FusedPairsGiveTheSameOutputAndGradients) {
  SmallCnn m;
  Tensor x = randn({3, 2, 15, 15}).requires_grad_(true);
  Tensor y1 = (*m.net)(x);
  y1.sum().backward();
  const auto g1 = m.grads();
  const Tensor dx1 = x.grad().clone();
  m.net->zero_grad();
  x.grad().zero_();
  Tensor y2 = m.unfused(x);
  y2.sum().backward();
  const auto g2 = m.grads();
  EXPECT_TRUE(same_bits(y1, y2));
  EXPECT_TRUE(same_bits(dx1, x.grad()));
  for (size_t i = 0; i < g1.size(); ++i) EXPECT_TRUE(same_bits(g1[i], g2[i])) << "parameter " << i;
}

TEST(SequentialReluPool, FusesOnlyWithoutHooks) {
  const Device dev = test::install_strict_device();
  SmallCnn m;
  m.net->to(dev);
  Tensor x = randn({2, 2, 15, 15}).to(dev);
  auto& be = test::strict_backend();
  const int64_t fused = cpu::has_avx512() ? 1 : 0;  // without AVX-512 the CPU kernel declines: composed
  be.reset_counts();
  Tensor y = (*m.net)(x);
  EXPECT_EQ(be.calls("relu_max_pool2d_2x2"), 2);
  EXPECT_EQ(be.calls("max_pool2d"), 2 * (1 - fused));

  // A hook on the first ReLU must see its output: that pair runs unfused, the other stays fused.
  int64_t seen = 0;
  auto relu = (*m.net)[1];
  const int64_t id = relu->register_forward_hook([&](nn::Module&, const Tensor&, const Tensor& out) {
    seen = out.numel();
  });
  be.reset_counts();
  Tensor y_hooked = (*m.net)(x);
  EXPECT_EQ(seen, 2 * 4 * 13 * 13);
  EXPECT_EQ(be.calls("relu_max_pool2d_2x2"), 1);
  EXPECT_EQ(be.calls("max_pool2d"), 1 + (1 - fused));
  EXPECT_TRUE(same_bits(y, y_hooked));
  relu->remove_forward_hook(id);
  EXPECT_FALSE(relu->has_forward_hooks());
}

}  // namespace
}  // namespace loom
