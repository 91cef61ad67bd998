// Bahdanau (additive) and Luong (dot / general) attention: float64 gradchecks through queries, keys and every
// parameter, PyTorch parity of outputs and gradients (the same math written in torch), and masking.
#include <gtest/gtest.h>

#include <cmath>
#include <string>
#include <vector>

#include "loom/loom.h"
#include "loom/nn/rnn_attention.h"
#include "support/gradcheck.h"
#include "support/torch_oracle.h"

using namespace loom;
using loom::test::torch_run;

namespace {

// Padding at the end of rows 0 and 2 (lengths 3, 5, 2 of S = 5).
Tensor make_mask() {
  Tensor m = zeros({3, 5}, {.dtype = DType::boolean});
  bool* p = m.data<bool>();
  for (int s = 3; s < 5; ++s) p[0 * 5 + s] = true;
  for (int s = 2; s < 5; ++s) p[2 * 5 + s] = true;
  return m;
}

// Context and weights flattened into one tensor, so one gradcheck covers both outputs.
Tensor both(const nn::AttentionOutput& a) { return cat({a.context.flatten(), a.weights.flatten()}, 0); }

// The parameters of a module, as the inputs a gradcheck perturbs; `assign` writes them back into the layers.
std::vector<Tensor*> slots(nn::BahdanauAttention& m) {
  return {&m.query_proj->weight, &m.key_proj->weight, &m.key_proj->bias, &m.energy->weight};
}

TEST(RNNAttentionGradcheck, BahdanauStepAndSequence) {
  manual_seed(1);
  nn::BahdanauAttention m({.query_size = 4, .key_size = 3, .hidden_size = 5});
  m.to(DType::f64);
  const Tensor mask = make_mask();
  for (bool seq : {false, true}) {
    SCOPED_TRACE(seq ? "query (B, T, Q)" : "query (B, Q)");
    std::vector<Tensor> in{seq ? test::rand64({3, 2, 4}) : test::rand64({3, 4}), test::rand64({3, 5, 3})};
    for (Tensor* p : slots(m)) in.push_back(p->detach().clone().requires_grad_(true));
    EXPECT_GRADCHECK(
        [&](const std::vector<Tensor>& x) {
          auto s = slots(m);
          for (size_t i = 0; i < s.size(); ++i) *s[i] = x[2 + i];
          return both(m.forward(x[0], x[1], mask));
        },
        in);
  }
}

TEST(RNNAttentionGradcheck, LuongDotAndGeneral) {
  manual_seed(2);
  const Tensor mask = make_mask();
  for (const std::string score : {"dot", "general"}) {
    SCOPED_TRACE(score);
    nn::LuongAttention m({.query_size = 4, .key_size = score == "dot" ? 4 : 3, .score = score});
    m.to(DType::f64);
    std::vector<Tensor> in{test::rand64({3, 2, 4}), test::rand64({3, 5, m.options.key_size})};
    if (m.key_proj) in.push_back(m.key_proj->weight.detach().clone().requires_grad_(true));
    EXPECT_GRADCHECK(
        [&](const std::vector<Tensor>& x) {
          if (m.key_proj) m.key_proj->weight = x[2];
          return both(m.forward(x[0], x[1], mask));
        },
        in);
  }
}

// The same attention in torch: scores, masked softmax, weighted sum; gradients of sum(c * gc) + sum(w * gw).
const char* kTorchTail = R"(
s = s.masked_fill(mask.unsqueeze(1), float('-inf'))
w = torch.softmax(s, -1)
c = torch.bmm(w, k)
((c * gc).sum() + (w * gw).sum()).backward()
out['c'] = c; out['w'] = w; out['gq'] = q.grad; out['gk'] = k.grad
)";

TEST(RNNAttentionParity, BahdanauMatchesTorch) {
  manual_seed(3);
  nn::BahdanauAttention m({.query_size = 6, .key_size = 4, .hidden_size = 5});
  Tensor q = randn({3, 2, 6}).requires_grad_(true), k = randn({3, 5, 4}).requires_grad_(true);
  const Tensor mask = make_mask();
  nn::AttentionOutput a = m.forward(q, k, mask);
  Tensor gc = randn(a.context.shape()), gw = randn(a.weights.shape());
  ((a.context * gc).sum() + (a.weights * gw).sum()).backward();
  auto r = torch_run(std::string(R"(
pq = q @ Wq.t()
pk = k @ Wk.t() + bk
s = (torch.tanh(pq.unsqueeze(2) + pk.unsqueeze(1)) @ v.t()).squeeze(-1)
)") + kTorchTail + "out['gWq'] = Wq.grad; out['gWk'] = Wk.grad; out['gbk'] = bk.grad; out['gv'] = v.grad\n",
                     {{"q", q.detach(), true},
                      {"k", k.detach(), true},
                      {"mask", mask},
                      {"gc", gc},
                      {"gw", gw},
                      {"Wq", m.query_proj->weight.detach(), true},
                      {"Wk", m.key_proj->weight.detach(), true},
                      {"bk", m.key_proj->bias.detach(), true},
                      {"v", m.energy->weight.detach(), true}});
  EXPECT_PARITY("context", a.context, r["c"]);
  EXPECT_PARITY("weights", a.weights, r["w"]);
  EXPECT_PARITY("grad query", q.grad(), r["gq"]);
  EXPECT_PARITY("grad keys", k.grad(), r["gk"]);
  EXPECT_PARITY("grad query_proj", m.query_proj->weight.grad(), r["gWq"]);
  EXPECT_PARITY("grad key_proj", m.key_proj->weight.grad(), r["gWk"]);
  EXPECT_PARITY("grad key_proj bias", m.key_proj->bias.grad(), r["gbk"]);
  EXPECT_PARITY("grad energy", m.energy->weight.grad(), r["gv"]);
}

TEST(RNNAttentionParity, LuongMatchesTorch) {
  manual_seed(4);
  const Tensor mask = make_mask();
  for (const std::string score : {"dot", "general"}) {
    SCOPED_TRACE(score);
    const bool general = score == "general";
    nn::LuongAttention m({.query_size = 6, .key_size = general ? 4 : 6, .score = score});
    Tensor q = randn({3, 2, 6}).requires_grad_(true), k = randn({3, 5, m.options.key_size}).requires_grad_(true);
    nn::AttentionOutput a = m.forward(q, k, mask);
    Tensor gc = randn(a.context.shape()), gw = randn(a.weights.shape());
    ((a.context * gc).sum() + (a.weights * gw).sum()).backward();
    std::vector<test::Arg> args{{"q", q.detach(), true}, {"k", k.detach(), true}, {"mask", mask}, {"gc", gc}, {"gw", gw}};
    std::string code = general ? "s = torch.bmm(q, (k @ W.t()).transpose(1, 2))\n" : "s = torch.bmm(q, k.transpose(1, 2))\n";
    code += kTorchTail;
    if (general) {
      args.push_back({"W", m.key_proj->weight.detach(), true});
      code += "out['gW'] = W.grad\n";
    }
    auto r = torch_run(code, args);
    EXPECT_PARITY("context", a.context, r["c"]);
    EXPECT_PARITY("weights", a.weights, r["w"]);
    EXPECT_PARITY("grad query", q.grad(), r["gq"]);
    EXPECT_PARITY("grad keys", k.grad(), r["gk"]);
    if (general) EXPECT_PARITY("grad key_proj", m.key_proj->weight.grad(), r["gW"]);
  }
}

TEST(RNNAttention, PaddingGetsNoWeightAndCannotChangeTheContext) {
  manual_seed(5);
  nn::BahdanauAttention m({.query_size = 4, .key_size = 3, .hidden_size = 5});
  const Tensor mask = make_mask();
  Tensor q = randn({3, 4}), k = randn({3, 5, 3});
  nn::AttentionOutput a = m.forward(q, k, mask);
  ASSERT_EQ(a.context.shape(), Shape({3, 3}));
  ASSERT_EQ(a.weights.shape(), Shape({3, 5}));
  const auto w = a.weights.tolist(), mk = mask.to(DType::f32).tolist();
  for (size_t i = 0; i < w.size(); ++i)
    if (mk[i] != 0) EXPECT_EQ(w[i], 0.0) << "weight " << i << " of a padding position";
  for (double s : sum(a.weights, {1}).tolist()) EXPECT_NEAR(s, 1.0, 1e-6);
  // Garbage at the padded keys changes nothing.
  Tensor k2 = k.clone();
  k2.narrow(1, 3, 2).select(0, 0).fill_(100.0);
  EXPECT_TRUE(allclose(m.forward(q, k2, mask).context, a.context, 1e-6, 1e-7));
  // Precomputed keys give the same answer as computing them inside.
  EXPECT_TRUE(allclose(m.forward(q, k, mask, m.project_keys(k)).context, a.context, 1e-6, 1e-7));
}

TEST(RNNAttention, BadShapesAndOptionsAreNamed) {
  nn::LuongAttention dot({.query_size = 4, .key_size = 4});
  EXPECT_THROW(dot.forward(randn({2, 3}), randn({2, 5, 4})), Error);         // query width
  EXPECT_THROW(dot.forward(randn({2, 4}), randn({3, 5, 4})), Error);         // batch
  EXPECT_THROW(dot.forward(randn({2, 4}), randn({2, 5, 4}), zeros({2, 4}, {.dtype = DType::boolean})), Error);
  EXPECT_THROW(dot.forward(randn({2, 4}), randn({2, 5, 4}), zeros({2, 5})), Error);  // mask must be bool
  EXPECT_THROW(nn::LuongAttention({.query_size = 4, .key_size = 3, .score = "dot"}), Error);
  EXPECT_THROW(nn::LuongAttention({.query_size = 4, .key_size = 4, .score = "concat"}), Error);
  EXPECT_THROW(nn::BahdanauAttention({.query_size = 4, .key_size = 4}), Error);
  try {
    dot.forward(randn({2, 3}), randn({2, 5, 4}));
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("query"), std::string::npos) << e.what();
  }
}

TEST(RNNAttention, ParameterNames) {
  nn::BahdanauAttention b({.query_size = 4, .key_size = 3, .hidden_size = 5});
  std::vector<std::string> names;
  for (const auto& [n, t] : b.named_parameters()) names.push_back(n);
  EXPECT_EQ(names, (std::vector<std::string>{"query_proj.weight", "key_proj.weight", "key_proj.bias", "energy.weight"}));
  EXPECT_EQ(nn::LuongAttention({.query_size = 4, .key_size = 4}).num_parameters(), 0);
  EXPECT_EQ(nn::LuongAttention({.query_size = 4, .key_size = 3, .score = "general"}).num_parameters(), 12);
}

}  // namespace
