// scaled_dot_product_attention against PyTorch 1.13's explicit matmul-softmax-matmul (1.13 has no
// F.scaled_dot_product_attention): values and q/k/v gradients, f32, through both the fused and the
// composite paths.
#include <gtest/gtest.h>

#include "loom/loom.h"
#include "support/torch_oracle.h"

using namespace loom;
using loom::test::torch_run;

namespace {

// The torch side: scores, causal/bool/float mask, softmax, weighted sum; backward with g.
const char* kTorchSDPA = R"(
s = q @ k.transpose(-2, -1) * scale
Tq, Tk = s.shape[-2], s.shape[-1]
if causal:
    s = s.masked_fill(~torch.ones(Tq, Tk, dtype=torch.bool).tril(), float('-inf'))
if 'mask' in dir():
    s = s.masked_fill(~mask, float('-inf')) if mask.dtype == torch.bool else s + mask
y = torch.softmax(s, -1) @ v
y.backward(g)
out['y'] = y; out['gq'] = q.grad; out['gk'] = k.grad; out['gv'] = v.grad
)";

struct Case {
  Shape q, k, v;
  bool causal = false;
  int mask = 0;  // 0 none, 1 bool, 2 float
  double scale = 0;
};

void check_case(const Case& c, bool composite) {
  manual_seed(11);
  Tensor q = randn(c.q).requires_grad_(true), k = randn(c.k).requires_grad_(true), v = randn(c.v).requires_grad_(true);
  SDPAOptions o{.is_causal = c.causal, .scale = c.scale};
  const int64_t Tq = c.q[c.q.size() - 2], Tk = c.k[c.k.size() - 2];
  std::vector<loom::test::Arg> args;
  if (c.mask == 1) {
    // Every row keeps key 0 so that no row is fully masked (torch would give NaN there).
    Tensor m = rand({c.q[0], 1, Tq, Tk}) > 0.3;
    m = logical_or(m, arange(0, Tk).view({1, 1, 1, Tk}) == 0);
    o.attn_mask = m;
    args.push_back({"mask", m});
  } else if (c.mask == 2) {
    Tensor m = randn({Tq, Tk});
    o.attn_mask = m;
    args.push_back({"mask", m});
  }
  Tensor y = composite ? attention_with_weights(q, k, v, o).first : scaled_dot_product_attention(q, k, v, o);
  Tensor g = randn(y.shape());
  y.backward(g);
  const double scale = c.scale ? c.scale : 1.0 / std::sqrt(double(c.q.back()));
  args.insert(args.end(), {{"q", q.detach(), true}, {"k", k.detach(), true}, {"v", v.detach(), true}, {"g", g}});
  auto r = torch_run(std::string("scale = ") + std::to_string(scale) + "\ncausal = " + (c.causal ? "True" : "False") +
                         kTorchSDPA,
                     args);
  EXPECT_PARITY("y", y, r["y"], 2e-5);
  EXPECT_PARITY("gq", q.grad(), r["gq"], 2e-5);
  EXPECT_PARITY("gk", k.grad(), r["gk"], 2e-5);
  EXPECT_PARITY("gv", v.grad(), r["gv"], 2e-5);
}

const std::vector<Case> kCases = {
    {{2, 3, 7, 8}, {2, 3, 7, 8}, {2, 3, 7, 8}},
    {{2, 3, 7, 8}, {2, 3, 7, 8}, {2, 3, 7, 8}, true},
    {{2, 2, 5, 8}, {2, 2, 9, 8}, {2, 2, 9, 6}, true},          // Tq < Tk, causal is top-left
    {{1, 2, 9, 4}, {1, 2, 5, 4}, {1, 2, 5, 4}, true},          // Tq > Tk: rows past Tk see all keys
    {{2, 2, 70, 16}, {2, 2, 70, 16}, {2, 2, 70, 16}, true},    // over one tile, not a multiple
    {{2, 3, 6, 8}, {2, 3, 10, 8}, {2, 3, 10, 8}, false, 1},    // bool mask broadcast over heads
    {{2, 3, 6, 8}, {2, 3, 10, 8}, {2, 3, 10, 8}, true, 2},     // float mask + causal
    {{3, 1, 8}, {3, 13, 8}, {3, 13, 5}, false, 0, 0.3},        // decode step, 3-d, custom scale
};

}  // namespace

TEST(AttentionParity, SdpaMatchesTorch) {
  for (size_t i = 0; i < kCases.size(); ++i) {
    SCOPED_TRACE(::testing::Message() << "case " << i);
    check_case(kCases[i], false);
  }
}

TEST(AttentionParity, CompositeMatchesTorch) {
  for (size_t i = 0; i < kCases.size(); ++i) {
    SCOPED_TRACE(::testing::Message() << "case " << i);
    check_case(kCases[i], true);
  }
}
