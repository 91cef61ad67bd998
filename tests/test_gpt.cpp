// GPT: logits, loss and every parameter gradient against a plain-torch GPT-2 (tests/support/gpt2_ref.py)
// with the same weights; the KV cache against the full forward; activation checkpointing (same gradients,
// less memory held between forward and backward) and its checkpoint() utility (gradcheck).
#include <gtest/gtest.h>
#include <malloc.h>

#include "loom/autograd/checkpoint.h"
#include "loom/core/allocator.h"
#include "loom/loom.h"
#include "loom/models/gpt.h"
#include "support/gradcheck.h"
#include "support/torch_oracle.h"

#if defined(__SANITIZE_ADDRESS__)
// From libasan (GCC ships no allocator_interface.h): bytes currently allocated through malloc.
extern "C" size_t __sanitizer_get_current_allocated_bytes();
#endif

using namespace loom;
using loom::models::GPT;
using loom::models::GPTConfig;
using loom::test::Arg;
using loom::test::torch_run;

namespace {

const std::string kRef = std::string("exec(open('") + LOOM_TEST_DIR + "/support/gpt2_ref.py').read(), globals())\n";

GPTConfig small_config(bool tied = true, const std::string& act = "gelu_new") {
  return {.vocab_size = 11, .n_positions = 16, .n_embd = 16, .n_layer = 2, .n_head = 2,
          .activation_function = act, .tie_word_embeddings = tied};
}

// Weights far from the GPT-2 init (LayerNorm affine and biases included), so every term of the forward counts.
void randomize(GPT& m, uint64_t seed) {
  Generator g(seed);
  NoGradGuard no_grad;
  for (auto& [name, p] : m.named_parameters()) {
    Tensor r = randn(p.shape(), {}, &g) * 0.2;
    if (name.find("ln_") != std::string::npos && name.find("weight") != std::string::npos) r = r + 1.0;
    p.copy_(r);
  }
}

// Bytes currently allocated by malloc (the caching allocator's free blocks returned first).
size_t live_bytes() {
  cpu_empty_cache();
#if defined(__SANITIZE_ADDRESS__)
  return __sanitizer_get_current_allocated_bytes();
#else
  return mallinfo2().uordblks;
#endif
}

}  // namespace

class GPTParity : public ::testing::TestWithParam<bool> {};

// Two batch shapes: 14 rows (the MLP runs as two Linears and a GELU: few rows) and 36 (the fused gelu_mlp, its GELU
// in the products' stores); attention reads its heads in place from the q/k/v projection in both.
TEST_P(GPTParity, LogitsLossAndGradsMatchTorch) {
  for (const Shape& shape : {Shape{2, 7}, Shape{3, 12}}) {
    SCOPED_TRACE("batch " + std::to_string(shape[0]) + " x " + std::to_string(shape[1]));
    const bool tied = GetParam();
    GPT m(small_config(tied, tied ? "gelu_new" : "gelu"));
    randomize(m, 3);
    manual_seed(4);
    Tensor idx = randint(0, 11, shape), y = randint(0, 11, shape);
    Tensor logits = m(idx);
    Tensor loss = cross_entropy(logits.view({-1, 11}), y.view({-1}));
    loss.backward();

    std::vector<Arg> args{{"idx", idx}, {"y", y}};
    std::string names = "names = [";
    auto params = m.named_parameters();
    for (size_t i = 0; i < params.size(); ++i) {
      args.push_back({"p" + std::to_string(i), params[i].second, true});
      names += "'" + params[i].first + "',";
    }
    names += "]\n";
    names += std::string("ACT = '") + (tied ? "gelu_new" : "gelu") + "'\nTIED = " + (tied ? "True" : "False") + "\n";
    auto r = torch_run(kRef + names + R"PY(
ps = [globals()['p%d' % i] for i in range(len(names))]
sd = {n: (p.t() if is_conv1d(n) else p) for n, p in zip(names, ps)}
cfg = {'n_embd': 16, 'n_head': 2, 'n_layer': 2, 'activation_function': ACT, 'tie_word_embeddings': TIED}
logits = gpt2_forward(sd, cfg, idx)
loss = F.cross_entropy(logits.view(-1, 11), y.view(-1)); loss.backward()
out['logits'] = logits; out['loss'] = loss
for i, p in enumerate(ps): out['g%d' % i] = p.grad
)PY",
                       args);
    EXPECT_PARITY("logits", logits, r.at("logits"));
    EXPECT_PARITY("loss", loss, r.at("loss"));
    for (size_t i = 0; i < params.size(); ++i)
      EXPECT_PARITY("grad of " + params[i].first, params[i].second.grad(), r.at("g" + std::to_string(i)), 1e-4);
  }
}

INSTANTIATE_TEST_SUITE_P(Tied, GPTParity, ::testing::Bool());

TEST(GPT, StateDictHasHuggingFaceNames) {
  GPT tied(small_config(true)), untied(small_config(false));
  auto names = [](const GPT& m) {
    std::vector<std::string> v;
    const nn::StateDict sd = m.state_dict();
    for (auto& [n, t] : sd.items()) v.push_back(n);
    return v;
  };
  auto a = names(tied), b = names(untied);
  EXPECT_EQ(a.front(), "wte.weight");
  EXPECT_EQ(a[1], "wpe.weight");
  EXPECT_NE(std::find(a.begin(), a.end(), "h.1.attn.c_attn.weight"), a.end());
  EXPECT_NE(std::find(a.begin(), a.end(), "h.0.mlp.c_proj.bias"), a.end());
  EXPECT_EQ(a.back(), "ln_f.bias");
  EXPECT_EQ(std::find(a.begin(), a.end(), "lm_head.weight"), a.end());
  EXPECT_EQ(b.back(), "lm_head.weight");
  EXPECT_EQ(b.size(), a.size() + 1);
  EXPECT_EQ(tied.num_parameters(), 11 * 16 + 16 * 16 + 2 * (4 * 16 + 16 * 48 + 48 + 16 * 16 + 16 + 16 * 64 + 64 + 64 * 16 + 16) + 32);
}

// Prefill, then single tokens, then a multi-token chunk into a non-empty cache: each step's last logits
// equal the full forward's at that position.
TEST(GPT, KVCacheDecodingMatchesFullForward) {
  GPT m(small_config());
  randomize(m, 7);
  m.eval();
  manual_seed(8);
  Tensor idx = randint(0, 11, {2, 12});
  Tensor full;
  {
    NoGradGuard g;
    full = m(idx);
  }
  auto st = m.start_decoding(2, 12);
  int64_t pos = 0;
  for (int64_t len : {4, 1, 1, 1, 3, 2}) {
    Tensor last = m.decode_step(*st, idx.narrow(1, pos, len));
    pos += len;
    EXPECT_EQ(st->position, pos);
    EXPECT_FALSE(last.requires_grad());
    EXPECT_EQ(last.shape(), (Shape{2, 11}));
    EXPECT_PARITY("logits at " + std::to_string(pos - 1), last, full.select(1, pos - 1).contiguous());
  }
  EXPECT_THROW(m.decode_step(*st, idx.narrow(1, 0, 1)), Error);  // the cache (max_len 12) is full
  EXPECT_THROW(m.start_decoding(1, 17), Error);                   // past n_positions
}

TEST(GPT, RejectsBadConfigsAndInputs) {
  EXPECT_THROW(GPT(GPTConfig{.n_embd = 10, .n_head = 3}), Error);
  EXPECT_THROW(GPT(GPTConfig{.vocab_size = 5, .n_positions = 4, .n_embd = 4, .n_layer = 1, .n_head = 1,
                             .activation_function = "relu"}),
               Error);
  GPT m(small_config());
  EXPECT_THROW(m(zeros({1, 17}, {.dtype = DType::i64})), Error);  // longer than n_positions
  EXPECT_THROW(m(zeros({17}, {.dtype = DType::i64})), Error);     // not (B, T)
}

TEST(GPT, ConfigRoundTripsThroughMakeLanguageModel) {
  GPTConfig c = small_config(false, "gelu");
  c.dropout = 0.1;
  c.n_inner = 24;
  auto lm = models::make_language_model(c.to_json());
  auto* g = dynamic_cast<GPT*>(lm.get());
  ASSERT_NE(g, nullptr);
  EXPECT_EQ(g->cfg.to_json(), c.to_json());
  EXPECT_EQ(lm->context(), 16);
  EXPECT_EQ(lm->vocab_size(), 11);
  EXPECT_EQ(g->blocks[0]->mlp->c_fc->weight.shape(), (Shape{24, 16}));
  // The aliases a `loom train` command line may use.
  auto alias = GPTConfig::from_json({{"arch", "gpt"}, {"vocab_size", 65}, {"block_size", 32}, {"n_embd", 8},
                                     {"n_layer", 1}, {"n_head", 2}});
  EXPECT_EQ(alias.n_positions, 32);
  EXPECT_THROW(GPTConfig::from_json({{"n_embd", "wide"}}), Error);
}

// Same loss and gradients with and without activation checkpointing, dropout on (the recompute replays
// the random stream), and less memory held by the graph between forward and backward.
TEST(GPT, ActivationCheckpointingGivesSameGradsWithLessMemory) {
  GPTConfig c{.vocab_size = 11, .n_positions = 32, .n_embd = 32, .n_layer = 4, .n_head = 4, .dropout = 0.1};
  GPT plain(c);
  c.activation_checkpointing = true;
  GPT ckpt(c);
  ckpt.load_state_dict(plain.state_dict());
  manual_seed(9);
  Tensor idx = randint(0, 11, {4, 32}), y = randint(0, 11, {4, 32});
  size_t held[2];
  Tensor losses[2];
  GPT* models[2] = {&plain, &ckpt};
  for (int i = 0; i < 2; ++i) {
    manual_seed(10);
    const size_t before = live_bytes();
    Tensor loss = cross_entropy((*models[i])(idx).view({-1, 11}), y.view({-1}));
    held[i] = live_bytes() - before;
    loss.backward();
    losses[i] = loss;
  }
  EXPECT_PARITY("loss", losses[1], losses[0], 1e-6);
  auto pa = plain.named_parameters(), pb = ckpt.named_parameters();
  for (size_t i = 0; i < pa.size(); ++i) {
    ASSERT_TRUE(pb[i].second.grad().defined()) << pb[i].first;
    EXPECT_PARITY("grad of " + pa[i].first, pb[i].second.grad(), pa[i].second.grad(), 1e-5);
  }
  RecordProperty("held_plain", std::to_string(held[0]));
  RecordProperty("held_checkpointed", std::to_string(held[1]));
  EXPECT_LT(held[1] * 2, held[0]) << "held after forward: plain " << held[0] << " B, checkpointed " << held[1] << " B";
}

TEST(Checkpoint, GradcheckThroughRecompute) {
  Tensor w = loom::test::rand64({3, 3});
  auto f = [w](const std::vector<Tensor>& in) {
    return checkpoint([w](const Tensor& x) { return tanh(matmul(x, w)) * x; }, in[0] * in[1]);
  };
  EXPECT_GRADCHECK(f, {loom::test::rand64({2, 3}), loom::test::rand64({2, 3})});
}

TEST(Checkpoint, ParametersInsideGetTheirGradients) {
  Tensor w = loom::test::rand64({3, 4});
  Tensor x = loom::test::rand64({2, 3});
  auto body = [w](const std::vector<Tensor>& in) {
    return std::vector<Tensor>{sigmoid(matmul(in[0], w)), in[0].sum()};
  };
  auto outs = checkpoint(body, {x});
  EXPECT_FALSE(outs[0].grad_fn() == nullptr);
  (outs[0].sum() + outs[1] * 2.0).backward();
  Tensor gw = w.grad().clone(), gx = x.grad().clone();
  w.set_grad({});
  x.set_grad({});
  auto ref = body({x});
  (ref[0].sum() + ref[1] * 2.0).backward();
  EXPECT_PARITY("dw", gw, w.grad(), 1e-12);
  EXPECT_PARITY("dx", gx, x.grad(), 1e-12);
  // Without inputs that need grad nothing is recorded (PyTorch's reentrant checkpoint does the same).
  NoGradGuard g;
  EXPECT_FALSE(checkpoint(body, {x})[0].requires_grad());
}

// A whole block in float64 (fused q/k/v split with its own backward, causal attention, MLP) against
// central differences, with respect to its input.
TEST(GPT, BlockGradcheck) {
  GPTConfig c{.vocab_size = 5, .n_positions = 8, .n_embd = 8, .n_layer = 1, .n_head = 2};
  auto blk = std::make_shared<models::GPTBlock>(c);
  blk->to(DType::f64);
  {
    NoGradGuard g;
    for (auto& p : blk->parameters()) p.add_(loom::test::rand64(p.shape(), -0.3, 0.3, false));
  }
  EXPECT_GRADCHECK([blk](const std::vector<Tensor>& in) { return (*blk)(in[0]); }, {loom::test::rand64({2, 5, 8})});
}

// GPT's attention reads q, k, v from the (B, T, 3C) projection in place and writes (B, T, C) (AttnShape's layouts):
// same output and gradients as splitting the heads into packed tensors for scaled_dot_product_attention. Head
// sizes 8 (scalar key transposes) and 32 (register transposes), and 70 positions (a second, partial key tile).
TEST(GPT, AttentionInPlaceMatchesPackedHeads) {
  for (auto [C, H] : {std::pair<int64_t, int64_t>{32, 4}, {64, 2}}) {
    GPTConfig c{.vocab_size = 5, .n_positions = 80, .n_embd = C, .n_layer = 1, .n_head = H};
    models::GPTAttention attn(c);
    manual_seed(uint64_t(C));
    const int64_t B = 3, Tn = 70, D = C / H;
    const Tensor x0 = randn({B, Tn, C});
    Tensor x1 = x0.clone().requires_grad_(true), x2 = x0.clone().requires_grad_(true);
    const Tensor g = randn({B, Tn, C});
    Tensor y1 = attn.forward(x1);
    y1.backward(g);
    const Tensor dw1 = attn.c_attn->weight.grad().clone();
    attn.zero_grad();
    Tensor qkv = linear(x2, attn.c_attn->weight, attn.c_attn->bias);
    auto heads = [&](int64_t i) { return qkv.narrow(2, i * C, C).view({B, Tn, H, D}).transpose(1, 2); };
    Tensor y = scaled_dot_product_attention(heads(0), heads(1), heads(2), {.is_causal = true});
    Tensor y2 = linear(y.transpose(1, 2).reshape({B, Tn, C}), attn.c_proj->weight, attn.c_proj->bias);
    y2.backward(g);
    const std::string what = "C=" + std::to_string(C) + " H=" + std::to_string(H);
    EXPECT_PARITY(what + " output", y1, y2, 1e-5);
    EXPECT_PARITY(what + " dx", x1.grad(), x2.grad(), 1e-5);
    EXPECT_PARITY(what + " d c_attn.weight", dw1, attn.c_attn->weight.grad(), 1e-5);
  }
}
