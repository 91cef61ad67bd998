// Autocast: mm / bmm / matmul / linear in bf16 with f32 accumulation while a guard is alive, in forward and
// backward (the precision recorded at forward time), against f32 products of bf16-rounded operands in loom
// and in PyTorch, and loosely against torch.autocast itself.
#include <gtest/gtest.h>

#include <thread>

#include "loom/loom.h"
#include "loom/ops/autocast.h"
#include "support/torch_oracle.h"

using namespace loom;
using loom::test::torch_run;

namespace {

Tensor bf16_round(const Tensor& t) { return t.detach().to(DType::bf16).to(DType::f32); }

// Error bound of an f32 sum of K exact products: a few K * 2^-24 relative to the scale of the result.
::testing::AssertionResult close_f32_sum(const Tensor& got, const Tensor& want, int64_t K) {
  return loom::test::parity_close(got, want, 4e-8 * double(K) + 1e-6);
}

}  // namespace

TEST(Autocast, GuardNestsAndRestores) {
  EXPECT_EQ(autocast_dtype(), DType::f32);
  EXPECT_FALSE(autocast_enabled());
  {
    AutocastGuard on(DType::bf16);
    EXPECT_EQ(autocast_dtype(), DType::bf16);
    {
      AutocastGuard off(DType::f32);
      EXPECT_FALSE(autocast_enabled());
      {
        AutocastGuard again(DType::bf16);
        EXPECT_TRUE(autocast_enabled());
      }
      EXPECT_FALSE(autocast_enabled());
    }
    EXPECT_EQ(autocast_dtype(), DType::bf16);
  }
  EXPECT_EQ(autocast_dtype(), DType::f32);
  EXPECT_THROW(AutocastGuard bad(DType::f16), Error);
  EXPECT_EQ(autocast_dtype(), DType::f32);
  EXPECT_EQ(parse_precision("bf16"), DType::bf16);
  EXPECT_EQ(parse_precision("f32"), DType::f32);
  EXPECT_THROW(parse_precision("fp8"), Error);
}

TEST(Autocast, GuardIsPerThread) {
  AutocastGuard on(DType::bf16);
  DType seen = DType::bf16;
  std::thread t([&] { seen = autocast_dtype(); });
  t.join();
  EXPECT_EQ(seen, DType::f32);
}

TEST(Autocast, LinearForwardAndGradsAreBf16ProductsWithF32Accumulation) {
  manual_seed(21);
  const int64_t R = 37, I = 70, O = 45;
  Tensor x0 = randn({R, I}), w0 = randn({O, I}), b0 = randn({O}), g = randn({R, O});
  Tensor x = x0.detach().requires_grad_(true), w = w0.detach().requires_grad_(true), b = b0.detach().requires_grad_(true);
  Tensor y;
  {
    AutocastGuard on(DType::bf16);
    y = linear(x, w, b);
  }
  y.backward(g);  // the guard is gone: backward must still use bf16 products, as its forward did
  // f32 products of the rounded operands (the incoming gradient is rounded too; the bias gradient is not).
  Tensor xr = bf16_round(x0), wr = bf16_round(w0), gr = bf16_round(g);
  Tensor y_ref = mm(xr, wr.t()) + b0;
  EXPECT_EQ(y.dtype(), DType::f32);
  EXPECT_EQ(x.grad().dtype(), DType::f32);
  EXPECT_EQ(w.grad().dtype(), DType::f32);
  EXPECT_TRUE(close_f32_sum(y, y_ref, I));
  EXPECT_TRUE(close_f32_sum(x.grad(), mm(gr, wr), O));
  EXPECT_TRUE(close_f32_sum(w.grad(), mm(gr.t(), xr), R));
  EXPECT_TRUE(close_f32_sum(b.grad(), sum(g, {0}), R));
  // And it is not the f32 product: the rounding shows.
  EXPECT_GT(max(abs(y - (mm(x0, w0.t()) + b0))).item(), 1e-3);
  EXPECT_GT(max(abs(w.grad() - mm(g.t(), x0))).item(), 1e-3);
}

TEST(Autocast, BackwardFollowsTheForwardsPrecisionNotTheCurrentGuard) {
  manual_seed(22);
  Tensor a0 = randn({19, 33}), b0 = randn({33, 23}), g = randn({19, 23});
  Tensor a = a0.detach().requires_grad_(true), bb = b0.detach().requires_grad_(true);
  Tensor y = mm(a, bb);  // f32 forward
  {
    AutocastGuard on(DType::bf16);
    y.backward(g);  // backward inside a bf16 guard still runs in f32
  }
  Tensor a2 = a0.detach().requires_grad_(true), b2 = b0.detach().requires_grad_(true);
  mm(a2, b2).backward(g);
  EXPECT_EQ(a.grad().tolist(), a2.grad().tolist());
  EXPECT_EQ(bb.grad().tolist(), b2.grad().tolist());
}

TEST(Autocast, BmmAndMatmulUnderAutocast) {
  manual_seed(23);
  Tensor a0 = randn({3, 17, 40}), b0 = randn({3, 40, 9}), w0 = randn({40, 11}), g = randn({3, 17, 9});
  Tensor a = a0.detach().requires_grad_(true), b = b0.detach().requires_grad_(true);
  Tensor y, y2;
  {
    AutocastGuard on(DType::bf16);
    y = matmul(a, b);       // 3-d @ 3-d: bmm
    y2 = matmul(a0, w0);    // 3-d @ 2-d: one folded mm
  }
  y.backward(g);
  Tensor ar = bf16_round(a0), br = bf16_round(b0), gr = bf16_round(g);
  EXPECT_TRUE(close_f32_sum(y, bmm(ar, br), 40));
  EXPECT_TRUE(close_f32_sum(y2, matmul(ar, bf16_round(w0)), 40));
  EXPECT_TRUE(close_f32_sum(a.grad(), bmm(gr, br.transpose(1, 2)), 9));
  EXPECT_TRUE(close_f32_sum(b.grad(), bmm(ar.transpose(1, 2), gr), 17));
}

TEST(Autocast, Float64AndOtherOpsAreUntouched) {
  manual_seed(24);
  Tensor a = randn({8, 12}, {.dtype = DType::f64}), b = randn({12, 5}, {.dtype = DType::f64});
  Tensor x = randn({4, 50});
  Tensor want = mm(a, b), want_sm = softmax(x, 1), want_ln = layer_norm(x, {50});
  AutocastGuard on(DType::bf16);
  EXPECT_EQ(mm(a, b).tolist(), want.tolist());
  EXPECT_EQ(softmax(x, 1).tolist(), want_sm.tolist());
  EXPECT_EQ(layer_norm(x, {50}).tolist(), want_ln.tolist());
}

// PyTorch: exact semantics (f32 products of bf16-rounded operands), then torch.autocast itself, which also
// rounds its output and gradients to bf16, so it agrees to bf16 precision.
TEST(Autocast, ParityWithTorch) {
  manual_seed(25);
  Tensor x0 = randn({16, 64}), w0 = randn({48, 64}), b0 = randn({48}), g = randn({16, 48});
  Tensor x = x0.detach().requires_grad_(true), w = w0.detach().requires_grad_(true), b = b0.detach().requires_grad_(true);
  Tensor y;
  {
    AutocastGuard on(DType::bf16);
    y = linear(x, w, b);
  }
  y.backward(g);
  auto r = torch_run(
      "r = lambda t: t.detach().bfloat16().float()\n"
      "out['y'] = r(x) @ r(w).t() + b\n"
      "out['gx'] = r(g) @ r(w)\n"
      "out['gw'] = r(g).t() @ r(x)\n"
      "xa, wa, ba = x.detach().requires_grad_(), w.detach().requires_grad_(), b.detach().requires_grad_()\n"
      "with torch.autocast('cpu', dtype=torch.bfloat16):\n"
      "    ya = F.linear(xa, wa, ba)\n"
      "ya.backward(g.bfloat16())\n"
      "out['ya'] = ya.float(); out['gxa'] = xa.grad.float(); out['gwa'] = wa.grad.float()\n",
      {{"x", x0}, {"w", w0}, {"b", b0}, {"g", g}});
  EXPECT_PARITY("y", y, r["y"], 1e-5);
  EXPECT_PARITY("dx", x.grad(), r["gx"], 1e-5);
  EXPECT_PARITY("dw", w.grad(), r["gw"], 1e-5);
  EXPECT_PARITY("y vs autocast", y, r["ya"], 8e-3);
  EXPECT_PARITY("dx vs autocast", x.grad(), r["gxa"], 8e-3);
  EXPECT_PARITY("dw vs autocast", w.grad(), r["gwa"], 8e-3);
}
