// quant::QuantizedEmbedding, the input lookup of a tied quantized GPT: its rows are exactly the head's dequantized
// rows (q8_0 and q4_0, any id shape), read from the head's own blocks; a quantized tied GPT holds no f32 (V, C)
// table, whether quantized in memory or loaded from a run folder; its prefill and decode logits equal, bit for bit,
// those of the model as it was before (an f32 table holding the dequantized head); bad ids fail naming the layer;
// and it runs on the strict device without host reads.
#include <gtest/gtest.h>

#include "support/scratch.h"
#include "support/strict_backend.h"

#include "loom/loom.h"
#include "loom/models/gpt_quant.h"
#include "loom/quant/quantized_embedding.h"
#include "loom/quant/quantized_linear.h"

using namespace loom;
using namespace loom::models;
using quant::QuantFormat;

namespace {

constexpr int64_t V = 2048, C = 64;  // the f32 table (512 KB) outweighs the whole quantized model (~270 KB)

std::shared_ptr<GPT> make_gpt(uint64_t seed) {
  manual_seed(seed);
  auto g = std::make_shared<GPT>(GPTConfig{.vocab_size = V, .n_positions = 32, .n_embd = C, .n_layer = 2, .n_head = 2});
  g->eval();
  return g;
}

std::shared_ptr<GPT> quantized(uint64_t seed, QuantFormat f) {
  auto g = make_gpt(seed);
  quantize_gpt(*g, f);
  return g;
}

// The model as main built it before this layer: the same quantized head, and wte an f32 table holding the head's
// dequantized rows.
std::shared_ptr<GPT> with_float_table(uint64_t seed, QuantFormat f) {
  auto g = quantized(seed, f);
  auto table = std::make_shared<nn::Embedding>(nn::EmbeddingOptions{.num_embeddings = V, .embedding_dim = C});
  NoGradGuard ng;
  table->weight.copy_(static_cast<quant::QuantizedLinear&>(*g->lm_head).dequantized_weight());
  g->wte = g->register_module("wte", table);
  return g;
}

int64_t tensor_bytes(const nn::Module& m) {
  int64_t n = 0;
  for (const auto& list : {m.named_parameters(), m.named_buffers()})
    for (const auto& [k, t] : list)
      if (t.defined()) n += t.numel() * int64_t(itemsize(t.dtype()));
  return n;
}

// The f32 tensors of shape (V, C) the model holds, by name.
std::vector<std::string> float_tables(const nn::Module& m) {
  std::vector<std::string> found;
  for (const auto& list : {m.named_parameters(), m.named_buffers()})
    for (const auto& [k, t] : list)
      if (t.defined() && t.dtype() == DType::f32 && t.shape() == Shape{V, C}) found.push_back(k);
  return found;
}

void expect_equal(const Tensor& a, const Tensor& b, const std::string& what) {
  ASSERT_EQ(a.shape(), b.shape()) << what;
  EXPECT_EQ((a - b).abs().max().item(), 0.0) << what;
}

Tensor ids(int64_t b, int64_t t) {
  manual_seed(9);
  return randint(0, V, {b, t});
}

}  // namespace

TEST(QuantEmbedding, RowsAreTheHeadsDequantizedRows) {
  NoGradGuard ng;
  for (auto f : {QuantFormat::q8_0, QuantFormat::q4_0}) {
    auto g = quantized(1, f);
    auto& head = static_cast<quant::QuantizedLinear&>(*g->lm_head);
    auto* emb = dynamic_cast<quant::QuantizedEmbedding*>(g->wte.get());
    ASSERT_NE(emb, nullptr) << quant::format_name(f);
    // The head's blocks themselves, not a copy.
    EXPECT_EQ(emb->weight_q.raw_data(), head.weight_q.raw_data());
    EXPECT_EQ(emb->num_parameters(), 0);
    const Tensor table = head.dequantized_weight();
    const Tensor idx = tensor(std::vector<int64_t>{0, V - 1, 7, 7, 300, 1}, {2, 3});
    expect_equal((*emb)(idx), index_select(table, 0, idx.reshape({-1})).reshape({2, 3, C}), "2-d ids");
    expect_equal((*emb)(idx.to(DType::i32)), (*emb)(idx), "int32 ids");
    expect_equal((*emb)(idx.select(0, 1).select(0, 1)), table.select(0, 300), "0-d id");
    // Every row at once: the whole table.
    expect_equal((*emb)(arange(V)), table, "all rows");
  }
}

TEST(QuantEmbedding, BadInputFailsClearly) {
  auto g = quantized(2, QuantFormat::q8_0);
  const auto check = [&](const Tensor& idx, const std::string& want) {
    try {
      (*g->wte)(idx);
      FAIL() << "expected an error containing " << want;
    } catch (const Error& e) {
      EXPECT_NE(std::string(e.what()).find(want), std::string::npos) << e.what();
      EXPECT_NE(std::string(e.what()).find("QuantizedEmbedding"), std::string::npos) << e.what();
    }
  };
  check(tensor(std::vector<int64_t>{3, V}, {2}), "index 2048 is out of range for 2048");
  check(tensor(std::vector<int64_t>{-1}, {1}), "index -1 is out of range");
  check(tensor({1.0, 2.0}), "expected int64 or int32 indices");
  // Blocks that are not rows of embedding_dim values are refused when the layer is built.
  EXPECT_THROW(quant::QuantizedEmbedding(zeros({4, 10}, {.dtype = DType::u8}), QuantFormat::q8_0, 64), Error);
  EXPECT_THROW(quant::QuantizedEmbedding(zeros({4, 68}, {.dtype = DType::u8}), QuantFormat::q8_0, 48), Error);
  EXPECT_THROW(quant::QuantizedEmbedding(zeros({4, 68}), QuantFormat::q8_0, 64), Error);  // f32, not u8
  // A quantized model has no f32 head weight to hand out.
  try {
    g->lm_head_weight();
    FAIL() << "lm_head_weight() of a quantized model";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("quantized"), std::string::npos) << e.what();
  }
}

TEST(QuantEmbedding, TiedQuantizedGptHoldsNoFloatTable) {
  NoGradGuard ng;
  for (auto f : {QuantFormat::q8_0, QuantFormat::q4_0}) {
    const std::string name = quant::format_name(f);
    auto now = quantized(3, f), before = with_float_table(3, f);
    EXPECT_EQ(float_tables(*now), std::vector<std::string>{}) << name;
    EXPECT_EQ(float_tables(*before), std::vector<std::string>{"wte.weight"}) << name;
    // Exactly the table less; and the whole quantized model is now smaller than that table alone.
    EXPECT_EQ(tensor_bytes(*before) - tensor_bytes(*now), V * C * 4) << name;
    EXPECT_LT(tensor_bytes(*now), V * C * 4) << name;
    // A saved run folder loads back the same way (load_quantized_gpt), with the same logits.
    const auto dir = test::scratch("qembd-" + name).string();
    save_quantized_gpt(*now, f, dir);
    auto back = std::dynamic_pointer_cast<GPT>(load_language_model(dir));
    ASSERT_TRUE(back);
    EXPECT_NE(dynamic_cast<quant::QuantizedEmbedding*>(back->wte.get()), nullptr) << name;
    EXPECT_EQ(float_tables(*back), std::vector<std::string>{}) << name;
    EXPECT_EQ(tensor_bytes(*back), tensor_bytes(*now)) << name;
    expect_equal(back->forward(ids(2, 12)), now->forward(ids(2, 12)), name + " reloaded");
  }
  // Untied: the input table is not the head, so it stays an f32 Embedding beside the quantized head.
  manual_seed(4);
  GPT untied({.vocab_size = V, .n_positions = 32, .n_embd = C, .n_layer = 1, .n_head = 2, .tie_word_embeddings = false});
  quantize_gpt(untied, QuantFormat::q8_0);
  EXPECT_EQ(dynamic_cast<quant::QuantizedEmbedding*>(untied.wte.get()), nullptr);
  EXPECT_EQ(float_tables(untied), std::vector<std::string>{"wte.weight"});
}

TEST(QuantEmbedding, PrefillAndDecodeBitIdenticalToTheFloatTable) {
  NoGradGuard ng;
  for (auto f : {QuantFormat::q8_0, QuantFormat::q4_0}) {
    const std::string name = quant::format_name(f);
    auto now = quantized(5, f), before = with_float_table(5, f);
    const Tensor x = ids(2, 12);
    expect_equal(now->forward(x), before->forward(x), name + " forward");
    // A prompt of 8, then one token at a time.
    auto sn = now->start_decoding(2), sb = before->start_decoding(2);
    expect_equal(now->decode_step(*sn, x.narrow(1, 0, 8)), before->decode_step(*sb, x.narrow(1, 0, 8)), name + " prefill");
    for (int64_t t = 8; t < 12; ++t)
      expect_equal(now->decode_step(*sn, x.narrow(1, t, 1)), before->decode_step(*sb, x.narrow(1, t, 1)),
                   name + " step " + std::to_string(t));
    // The batched slot path (BatchEngine's): two of three slots, a prompt chunk and then single steps.
    auto ln = now->start_slots(3), lb = before->start_slots(3);
    const std::vector<int64_t> rows = {2, 0};
    expect_equal(now->decode_slots(*ln, rows, x.narrow(1, 0, 5)), before->decode_slots(*lb, rows, x.narrow(1, 0, 5)),
                 name + " slot prefill");
    for (int64_t t = 5; t < 8; ++t)
      expect_equal(now->decode_slots(*ln, rows, x.narrow(1, t, 1)), before->decode_slots(*lb, rows, x.narrow(1, t, 1)),
                   name + " slot step " + std::to_string(t));
  }
}

TEST(QuantEmbedding, RunsOnTheStrictDevice) {
  NoGradGuard ng;
  const Device dev = test::install_strict_device();
  for (auto f : {QuantFormat::q8_0, QuantFormat::q4_0}) {
    const std::string name = quant::format_name(f);
    auto host = quantized(6, f), strict = quantized(6, f);
    strict->to(dev);
    // Moving the head moved the blocks the embedding reads (one tensor).
    auto* emb = dynamic_cast<quant::QuantizedEmbedding*>(strict->wte.get());
    ASSERT_NE(emb, nullptr);
    EXPECT_EQ(emb->weight_q.device(), dev);
    test::strict_backend().reset_counts();
    const Tensor x = ids(2, 6);
    Tensor y;
    ASSERT_NO_THROW(y = strict->forward(x.to(dev))) << name << ": an op read device memory outside the Backend";
    EXPECT_EQ(y.device(), dev);
    EXPECT_GT(test::strict_backend().calls("dequantize_rows"), 0) << name;
    EXPECT_GT(test::strict_backend().calls("index_select"), 0) << name;
    expect_equal(y.to(Device{}), host->forward(x), name);
  }
}
