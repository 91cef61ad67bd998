// MultiheadAttention and the Transformer layers against PyTorch 1.13's modules with the same weights: loom's
// state dict is loaded into torch's module (the keys must be PyTorch's, in PyTorch's order), then outputs,
// input gradients and parameter gradients are compared. Dropout is 0 (torch draws other random numbers).
#include <gtest/gtest.h>

#include <algorithm>

#include "loom/loom.h"
#include "support/torch_oracle.h"

using namespace loom;
using loom::test::Arg;
using loom::test::torch_run;

namespace {

// Python that builds `sd` from the inputs p0, p1, ... named by loom's keys, checks that the torch module
// `m` has exactly these keys in this order, loads them, and reports every parameter gradient as g:<key>.
std::string load_state(const nn::Module& model, std::vector<Arg>& args) {
  std::string keys = "keys = [";
  int i = 0;
  for (const auto& [k, t] : model.state_dict()) {
    args.push_back({"p" + std::to_string(i++), t.detach().clone()});
    keys += "'" + k + "', ";
  }
  return keys + "]\n"
         "sd = {k: globals()['p%d' % i] for i, k in enumerate(keys)}\n"
         "assert list(m.state_dict().keys()) == keys, (list(m.state_dict().keys()), keys)\n"
         "m.load_state_dict(sd)\n";
}
const char* kParamGrads = "for k, p in m.named_parameters(): out['g:' + k] = p.grad\n";

void expect_param_grads(const nn::Module& model, std::map<std::string, Tensor>& r, double tol = 1e-4) {
  for (const auto& [k, p] : model.named_parameters()) {
    ASSERT_TRUE(p.grad().defined()) << k;
    ASSERT_TRUE(r.count("g:" + k)) << k;
    EXPECT_PARITY("grad " + k, p.grad(), r["g:" + k], tol);
  }
}

}  // namespace

TEST(TransformerParity, MultiheadAttentionSelfWithMasks) {
  manual_seed(1);
  nn::MultiheadAttention mha({.embed_dim = 12, .num_heads = 3});
  const int64_t L = 5, N = 2;
  Tensor x = randn({L, N, 12}).requires_grad_(true);
  Tensor kpm = zeros({N, L}, {.dtype = DType::boolean});
  kpm.select(0, 1).narrow(0, 3, 2).fill_(1.0);               // batch 1: the last two keys are padding
  Tensor am = rand({L, L}) > 0.7;
  am.select(1, 0).fill_(0.0);                                 // key 0 always visible: no fully masked row
  auto [y, w] = mha.forward(x, x, x, {.key_padding_mask = kpm, .attn_mask = am});
  Tensor g = randn(y.shape());
  (y * g).sum().backward();
  std::vector<Arg> args{{"x", x.detach(), true}, {"g", g}, {"kpm", kpm}, {"am", am}};
  std::string code = "m = nn.MultiheadAttention(12, 3)\n" + load_state(mha, args) +
                     "y, w = m(x, x, x, key_padding_mask=kpm, attn_mask=am)\n(y * g).sum().backward()\n"
                     "out['y'] = y; out['w'] = w; out['gx'] = x.grad\n" + kParamGrads;
  auto r = torch_run(code, args);
  EXPECT_PARITY("y", y, r["y"]);
  EXPECT_PARITY("weights", w, r["w"]);
  EXPECT_PARITY("gx", x.grad(), r["gx"], 1e-4);
  expect_param_grads(mha, r);
}

TEST(TransformerParity, MultiheadAttentionCrossBatchFirstFloatMask) {
  manual_seed(2);
  nn::MultiheadAttention mha({.embed_dim = 8, .num_heads = 2, .kdim = 6, .vdim = 5, .batch_first = true});
  const int64_t N = 3, L = 4, S = 7;
  Tensor q = randn({N, L, 8}).requires_grad_(true), k = randn({N, S, 6}).requires_grad_(true);
  Tensor v = randn({N, S, 5}).requires_grad_(true);
  Tensor am = randn({N * 2, L, S});
  Tensor kpm = zeros({N, S}, {.dtype = DType::boolean});
  kpm.select(0, 0).narrow(0, 5, 2).fill_(1.0);
  for (bool need_weights : {false, true}) {
    SCOPED_TRACE(need_weights ? "need_weights" : "fused");
    mha.zero_grad(true);
    for (Tensor t : {q, k, v}) t.set_grad(Tensor());
    auto [y, w] = mha.forward(q, k, v, {.key_padding_mask = kpm, .need_weights = need_weights, .attn_mask = am,
                                        .average_attn_weights = false});
    EXPECT_EQ(w.defined(), need_weights);
    Tensor g = randn(y.shape());
    (y * g).sum().backward();
    std::vector<Arg> args{{"q", q.detach(), true}, {"k", k.detach(), true}, {"v", v.detach(), true}, {"g", g},
                          {"am", am}, {"kpm", kpm}};
    std::string code = "m = nn.MultiheadAttention(8, 2, kdim=6, vdim=5, batch_first=True)\n" + load_state(mha, args) +
                       "y, w = m(q, k, v, key_padding_mask=kpm, attn_mask=am, average_attn_weights=False)\n"
                       "(y * g).sum().backward()\nout['y'] = y; out['w'] = w\n"
                       "out['gq'] = q.grad; out['gk'] = k.grad; out['gv'] = v.grad\n" + kParamGrads;
    auto r = torch_run(code, args);
    EXPECT_PARITY("y", y, r["y"]);
    if (need_weights) {
      EXPECT_PARITY("weights", w, r["w"]);
    }
    EXPECT_PARITY("gq", q.grad(), r["gq"], 1e-4);
    EXPECT_PARITY("gk", k.grad(), r["gk"], 1e-4);
    EXPECT_PARITY("gv", v.grad(), r["gv"], 1e-4);
    expect_param_grads(mha, r);
  }
}

// is_causal (loom's flag, no mask tensor) equals torch with the explicit upper-triangular bool mask; unbatched.
TEST(TransformerParity, MultiheadAttentionCausalUnbatched) {
  manual_seed(3);
  nn::MultiheadAttention mha({.embed_dim = 8, .num_heads = 2});
  Tensor x = randn({6, 8}).requires_grad_(true);
  Tensor y = mha.forward(x, x, x, {.need_weights = false, .is_causal = true}).first;
  Tensor g = randn(y.shape());
  (y * g).sum().backward();
  std::vector<Arg> args{{"x", x.detach(), true}, {"g", g}};
  std::string code = "m = nn.MultiheadAttention(8, 2)\n" + load_state(mha, args) +
                     "am = torch.ones(6, 6, dtype=torch.bool).triu(1)\n"
                     "y, _ = m(x, x, x, attn_mask=am)\n(y * g).sum().backward()\nout['y'] = y; out['gx'] = x.grad\n";
  auto r = torch_run(code, args);
  EXPECT_PARITY("y", y, r["y"]);
  EXPECT_PARITY("gx", x.grad(), r["gx"], 1e-4);
}

namespace {

std::string layer_ctor(const char* cls, const nn::TransformerLayerOptions& o) {
  return std::string("m = nn.") + cls + "(" + std::to_string(o.d_model) + ", " + std::to_string(o.nhead) + ", " +
         std::to_string(o.dim_feedforward) + ", dropout=0.0, activation='" + o.activation + "', batch_first=" +
         (o.batch_first ? "True" : "False") + ", norm_first=" + (o.norm_first ? "True" : "False") + ")\n";
}

}  // namespace

TEST(TransformerParity, EncoderLayerBothNormOrders) {
  for (bool norm_first : {false, true}) {
    SCOPED_TRACE(norm_first ? "norm_first" : "post-norm");
    manual_seed(4);
    nn::TransformerLayerOptions o{.d_model = 16, .nhead = 4, .dim_feedforward = 24, .dropout = 0.0,
                                  .activation = norm_first ? "gelu" : "relu", .batch_first = true, .norm_first = norm_first};
    nn::TransformerEncoderLayer layer(o);
    Tensor x = randn({2, 5, 16}).requires_grad_(true);
    Tensor kpm = zeros({2, 5}, {.dtype = DType::boolean});
    kpm.select(0, 1).narrow(0, 4, 1).fill_(1.0);
    Tensor mask = nn::Transformer::generate_square_subsequent_mask(5);
    Tensor y = layer.forward(x, {mask, kpm});
    Tensor g = randn(y.shape());
    (y * g).sum().backward();
    // -inf does not travel through JSON: torch makes its own subsequent mask.
    std::vector<Arg> args{{"x", x.detach(), true}, {"g", g}, {"kpm", kpm}};
    std::string code = layer_ctor("TransformerEncoderLayer", o) + load_state(layer, args) +
                       "mask = nn.Transformer.generate_square_subsequent_mask(5)\n"
                       "y = m(x, src_mask=mask, src_key_padding_mask=kpm)\n(y * g).sum().backward()\n"
                       "out['y'] = y; out['gx'] = x.grad\n" + kParamGrads;
    auto r = torch_run(code, args);
    EXPECT_PARITY("y", y, r["y"], 1e-4);
    EXPECT_PARITY("gx", x.grad(), r["gx"], 1e-4);
    expect_param_grads(layer, r);
  }
}

TEST(TransformerParity, DecoderLayerBothNormOrders) {
  for (bool norm_first : {false, true}) {
    SCOPED_TRACE(norm_first ? "norm_first" : "post-norm");
    manual_seed(5);
    nn::TransformerLayerOptions o{.d_model = 12, .nhead = 3, .dim_feedforward = 20, .dropout = 0.0,
                                  .activation = norm_first ? "relu" : "gelu", .norm_first = norm_first};
    nn::TransformerDecoderLayer layer(o);
    Tensor tgt = randn({4, 2, 12}).requires_grad_(true), mem = randn({6, 2, 12}).requires_grad_(true);
    Tensor mkpm = zeros({2, 6}, {.dtype = DType::boolean});
    mkpm.select(0, 0).narrow(0, 4, 2).fill_(1.0);
    // tgt_is_causal stands for torch's explicit subsequent mask.
    Tensor y = layer.forward(tgt, mem, {.memory_key_padding_mask = mkpm, .tgt_is_causal = true});
    Tensor g = randn(y.shape());
    (y * g).sum().backward();
    std::vector<Arg> args{{"tgt", tgt.detach(), true}, {"mem", mem.detach(), true}, {"g", g}, {"mkpm", mkpm}};
    std::string code = layer_ctor("TransformerDecoderLayer", o) + load_state(layer, args) +
                       "tm = nn.Transformer.generate_square_subsequent_mask(4)\n"
                       "y = m(tgt, mem, tgt_mask=tm, memory_key_padding_mask=mkpm)\n(y * g).sum().backward()\n"
                       "out['y'] = y; out['gt'] = tgt.grad; out['gm'] = mem.grad\n" + kParamGrads;
    auto r = torch_run(code, args);
    EXPECT_PARITY("y", y, r["y"], 1e-4);
    EXPECT_PARITY("gtgt", tgt.grad(), r["gt"], 1e-4);
    EXPECT_PARITY("gmem", mem.grad(), r["gm"], 1e-4);
    expect_param_grads(layer, r);
  }
}

// The full nn.Transformer: loom's state dict loads into torch (same keys, same order) and gives the same
// outputs and gradients with every kind of mask.
TEST(TransformerParity, FullTransformerStateDictToTorch) {
  manual_seed(6);
  nn::Transformer t({.d_model = 16, .nhead = 2, .num_encoder_layers = 2, .num_decoder_layers = 2,
                     .dim_feedforward = 32, .dropout = 0.0, .batch_first = true});
  Tensor src = randn({2, 7, 16}).requires_grad_(true), tgt = randn({2, 5, 16}).requires_grad_(true);
  Tensor skpm = zeros({2, 7}, {.dtype = DType::boolean});
  skpm.select(0, 1).narrow(0, 5, 2).fill_(1.0);
  Tensor tm = nn::Transformer::generate_square_subsequent_mask(5);
  Tensor y = t.forward(src, tgt, {.tgt_mask = tm, .src_key_padding_mask = skpm, .memory_key_padding_mask = skpm});
  Tensor g = randn(y.shape());
  (y * g).sum().backward();
  std::vector<Arg> args{{"src", src.detach(), true}, {"tgt", tgt.detach(), true}, {"g", g}, {"skpm", skpm}};
  std::string code = "m = nn.Transformer(16, 2, 2, 2, 32, dropout=0.0, batch_first=True)\n" + load_state(t, args) +
                     "tm = m.generate_square_subsequent_mask(5)\n"
                     "y = m(src, tgt, tgt_mask=tm, src_key_padding_mask=skpm, memory_key_padding_mask=skpm)\n"
                     "(y * g).sum().backward()\nout['y'] = y; out['gs'] = src.grad; out['gt'] = tgt.grad\n" + kParamGrads;
  auto r = torch_run(code, args);
  EXPECT_PARITY("y", y, r["y"], 1e-4);
  EXPECT_PARITY("gsrc", src.grad(), r["gs"], 1e-4);
  EXPECT_PARITY("gtgt", tgt.grad(), r["gt"], 1e-4);
  expect_param_grads(t, r, 2e-4);
}

// The other direction: torch's freshly initialised encoder's state dict loads into loom (strict) and both
// compute the same output.
TEST(TransformerParity, TorchStateDictIntoLoomEncoder) {
  manual_seed(7);
  nn::TransformerEncoder enc({.d_model = 8, .nhead = 2, .dim_feedforward = 16, .dropout = 0.0}, 2, true);
  Tensor x = randn({5, 3, 8});
  std::string code =
      "torch.manual_seed(0)\n"
      "m = nn.TransformerEncoder(nn.TransformerEncoderLayer(8, 2, 16, dropout=0.0), 2, norm=nn.LayerNorm(8), "
      "enable_nested_tensor=False)\n"
      "for k, v in m.state_dict().items(): out['sd:' + k] = v\n"
      "out['y'] = m(x)\n";
  auto r = torch_run(code, {{"x", x}});
  nn::StateDict sd;
  for (const auto& [k, v] : r)
    if (k.rfind("sd:", 0) == 0) sd.insert(k.substr(3), v);
  auto theirs = sd.keys(), ours = enc.state_dict().keys();
  std::sort(theirs.begin(), theirs.end());
  std::sort(ours.begin(), ours.end());
  EXPECT_EQ(theirs, ours);
  enc.load_state_dict(sd);
  EXPECT_PARITY("y", enc.forward(x), r["y"], 1e-4);
}
