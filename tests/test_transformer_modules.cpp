// RMSNorm, positions (learned, sinusoidal, rotary) and MultiheadAttention: float64 gradchecks, and parity
// with torch formulas where PyTorch 1.13 has no module (RMSNorm, RoPE, the sinusoidal table).
#include <gtest/gtest.h>

#include "loom/loom.h"
#include "support/gradcheck.h"
#include "support/torch_oracle.h"

using namespace loom;
using loom::test::rand64;
using loom::test::torch_run;

TEST(RMSNorm, GradcheckAndParity) {
  manual_seed(1);
  Tensor x = rand64({3, 2, 5}), w = rand64({2, 5});
  EXPECT_GRADCHECK([](const std::vector<Tensor>& in) { return rms_norm(in[0], {2, 5}, in[1], 1e-3); }, {x, w});
  EXPECT_GRADCHECK([](const std::vector<Tensor>& in) { return rms_norm(in[0], {5}); }, {x});

  nn::RMSNorm norm({.normalized_shape = {6}, .eps = 1e-5});
  norm.weight.detach().uniform_(0.5, 1.5);
  Tensor xf = randn({4, 3, 6}).requires_grad_(true), g = randn({4, 3, 6});
  Tensor y = norm(xf);
  y.backward(g);
  auto r = torch_run(
      "y = x * torch.rsqrt(x.pow(2).mean(-1, keepdim=True) + 1e-5) * w\n"
      "y.backward(g)\nout['y'] = y; out['gx'] = x.grad; out['gw'] = w.grad",
      {{"x", xf.detach(), true}, {"w", norm.weight.detach().clone(), true}, {"g", g}});
  EXPECT_PARITY("y", y, r["y"]);
  EXPECT_PARITY("gx", xf.grad(), r["gx"]);
  EXPECT_PARITY("gw", norm.weight.grad(), r["gw"]);
  EXPECT_EQ(norm.state_dict().keys(), std::vector<std::string>{"weight"});
  EXPECT_THROW(norm(randn({2, 5})), Error);
}

TEST(Positional, SinusoidalTableMatchesTorchFormula) {
  Tensor pe = sinusoidal_positions(50, 12);
  auto r = torch_run(
      "import math\npe = torch.zeros(50, 12, dtype=torch.float64)\n"
      "pos = torch.arange(50, dtype=torch.float64).unsqueeze(1)\n"
      "div = torch.exp(torch.arange(0, 12, 2, dtype=torch.float64) * (-math.log(10000.0) / 12))\n"
      "pe[:, 0::2] = torch.sin(pos * div); pe[:, 1::2] = torch.cos(pos * div)\nout['pe'] = pe.float()",
      {});
  EXPECT_PARITY("pe", pe, r["pe"]);
  nn::SinusoidalPositionalEncoding enc({.max_len = 50, .dim = 12});
  EXPECT_TRUE(enc.state_dict().empty());  // recomputed, not saved
  Tensor x = randn({2, 7, 12});
  EXPECT_TRUE(allclose(enc.forward(x, 3), x + pe.narrow(0, 3, 7)));
  EXPECT_THROW(enc.forward(x, 44), Error);
}

TEST(Positional, RotaryMatchesTorchFormulaAndGradchecks) {
  manual_seed(2);
  Tensor q = randn({2, 3, 5, 8}).requires_grad_(true), k = randn({2, 3, 5, 8}).requires_grad_(true);
  Tensor pos = arange(4, 9);
  auto [qr, kr] = apply_rotary(q, k, pos);
  Tensor gq = randn(qr.shape()), gk = randn(kr.shape());
  ((qr * gq).sum() + (kr * gk).sum()).backward();
  auto r = torch_run(
      "D = 8\ninv = 1.0 / (10000.0 ** (torch.arange(0, D, 2, dtype=torch.float64) / D))\n"
      "f = torch.outer(pos.double(), inv)\nemb = torch.cat((f, f), -1)\ncos, sin = emb.cos().float(), emb.sin().float()\n"
      "rot = lambda x: torch.cat((-x[..., D // 2:], x[..., :D // 2]), -1)\n"
      "qr = q * cos + rot(q) * sin; kr = k * cos + rot(k) * sin\n"
      "((qr * gq).sum() + (kr * gk).sum()).backward()\n"
      "out['qr'] = qr; out['kr'] = kr; out['gq'] = q.grad; out['gk'] = k.grad",
      {{"q", q.detach(), true}, {"k", k.detach(), true}, {"pos", pos}, {"gq", gq}, {"gk", gk}});
  EXPECT_PARITY("q rotated", qr, r["qr"]);
  EXPECT_PARITY("k rotated", kr, r["kr"]);
  EXPECT_PARITY("gq", q.grad(), r["gq"]);
  EXPECT_PARITY("gk", k.grad(), r["gk"]);
  // Rotation keeps norms, and q.k depends only on the position difference.
  Tensor one = randn({1, 1, 1, 8}), two = randn({1, 1, 1, 8});
  auto dot_at = [&](int64_t a, int64_t b) {
    Tensor qa = apply_rotary(one, one, arange(a, a + 1)).first, kb = apply_rotary(two, two, arange(b, b + 1)).second;
    return (qa * kb).sum().item();
  };
  EXPECT_NEAR(dot_at(3, 1), dot_at(12, 10), 1e-5);
  // Per-sequence positions (N, T) broadcast over heads.
  Tensor pos2 = stack({arange(0, 5), arange(4, 9)});
  auto [q2, k2] = apply_rotary(q.detach(), k.detach(), pos2);
  EXPECT_TRUE(allclose(q2.select(0, 1), qr.detach().select(0, 1), 1e-6, 1e-6));
  Tensor x = rand64({1, 2, 4, 6});
  EXPECT_GRADCHECK([](const std::vector<Tensor>& in) { return apply_rotary(in[0], in[0] * 0.5, arange(0, 4)).first; }, {x});
}

TEST(Positional, LearnedEmbeddingAddsRowsAndTrains) {
  manual_seed(3);
  nn::LearnedPositionalEmbedding emb({.max_len = 10, .dim = 4});
  EXPECT_EQ(emb.state_dict().keys(), std::vector<std::string>{"weight"});
  Tensor x = randn({2, 3, 4});
  Tensor y = emb.forward(x, 2);
  EXPECT_TRUE(allclose(y, x + emb.weight.detach().narrow(0, 2, 3)));
  y.sum().backward();
  Tensor g = emb.weight.grad();
  EXPECT_EQ(g.narrow(0, 2, 3).sum().item(), 2.0 * 3 * 4);  // two batch rows reach each used position
  EXPECT_EQ(g.narrow(0, 0, 2).abs().sum().item(), 0.0);
  EXPECT_THROW(emb.forward(x, 8), Error);
}

// MultiheadAttention in float64 through both attention paths (fused without weights, composite with).
TEST(MultiheadAttention, GradcheckBothPaths) {
  manual_seed(4);
  nn::MultiheadAttention mha({.embed_dim = 6, .num_heads = 2, .batch_first = true});
  mha.to(DType::f64);
  Tensor x = rand64({2, 4, 6});
  Tensor kpm = zeros({2, 4}, {.dtype = DType::boolean});
  kpm.select(0, 0).narrow(0, 3, 1).fill_(1.0);
  for (bool need_weights : {false, true})
    EXPECT_GRADCHECK(
        [&](const std::vector<Tensor>& in) {
          return mha.forward(in[0], in[0], in[0], {.key_padding_mask = kpm, .need_weights = need_weights, .is_causal = true})
              .first;
        },
        {x});
}

TEST(MultiheadAttention, NamesAndErrors) {
  nn::MultiheadAttention mha({.embed_dim = 8, .num_heads = 2});
  EXPECT_EQ(mha.state_dict().keys(),
            (std::vector<std::string>{"in_proj_weight", "in_proj_bias", "out_proj.weight", "out_proj.bias"}));
  nn::MultiheadAttention kv({.embed_dim = 8, .num_heads = 2, .kdim = 3, .vdim = 5});
  EXPECT_EQ(kv.state_dict().keys(), (std::vector<std::string>{"q_proj_weight", "k_proj_weight", "v_proj_weight",
                                                              "in_proj_bias", "out_proj.weight", "out_proj.bias"}));
  EXPECT_THROW(nn::MultiheadAttention({.embed_dim = 8, .num_heads = 3}), Error);
  Tensor x = randn({3, 2, 8});
  EXPECT_THROW(mha.forward(x, x, x, {.attn_mask = zeros({2, 2})}), Error);
  EXPECT_THROW(mha.forward(randn({3, 2, 7}), x, x), Error);
  EXPECT_EQ(mha(x).shape(), (Shape{3, 2, 8}));
}
