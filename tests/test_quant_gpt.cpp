// A GPT quantized with models/gpt_quant.h: logits close to the float model's (Q8_0 tighter than Q4_0),
// incremental decoding agreeing with a full forward, and the saved folder reloading (through
// load_language_model, as loom generate/eval do) to a model with identical logits, with the tied embedding
// stored once as the head's blocks. Bad folders fail with errors naming the problem.
#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>

#include "support/scratch.h"

#include "loom/loom.h"
#include "loom/models/gpt_quant.h"
#include "loom/quant/quantized_linear.h"

using namespace loom;
using namespace loom::models;
namespace fs = std::filesystem;

namespace {

GPTConfig small_config() {
  return {.vocab_size = 40, .n_positions = 32, .n_embd = 64, .n_layer = 2, .n_head = 2};
}

std::shared_ptr<GPT> make_gpt(uint64_t seed) {
  manual_seed(seed);
  auto g = std::make_shared<GPT>(small_config());
  g->eval();
  return g;
}

Tensor ids() {
  manual_seed(9);
  return randint(0, 40, {2, 12});
}

double rel_err(const Tensor& a, const Tensor& b) { return (a - b).abs().max().item() / b.abs().max().item(); }

}  // namespace

TEST(QuantGPT, LogitsCloseToFloat) {
  NoGradGuard g;
  auto ref = make_gpt(1);
  const Tensor want = ref->forward(ids());
  for (auto [f, tol] : {std::pair{quant::QuantFormat::q8_0, 0.02}, {quant::QuantFormat::q4_0, 0.2}}) {
    auto q = make_gpt(1);
    quantize_gpt(*q, f);
    EXPECT_NE(dynamic_cast<quant::QuantizedLinear*>(q->blocks[0]->attn->c_attn.get()), nullptr);
    EXPECT_NE(dynamic_cast<quant::QuantizedLinear*>(q->lm_head.get()), nullptr);
    const Tensor got = q->forward(ids());
    ASSERT_EQ(got.shape(), want.shape());
    EXPECT_LT(rel_err(got, want), tol) << quant::format_name(f);
    EXPECT_GT(rel_err(got, want), 0.0) << "quantization changed nothing: the float path ran";
  }
}

TEST(QuantGPT, DecodeStepMatchesForward) {
  NoGradGuard g;
  auto q = make_gpt(2);
  quantize_gpt(*q, quant::QuantFormat::q4_0);
  const Tensor x = ids();
  const Tensor full = q->forward(x);
  auto st = q->start_decoding(2);
  Tensor last = q->decode_step(*st, x.narrow(1, 0, 8));  // prefill 8, then one token at a time
  for (int64_t t = 8; t < 12; ++t) last = q->decode_step(*st, x.narrow(1, t, 1));
  EXPECT_LT(rel_err(last, full.select(1, 11)), 1e-4);
}

TEST(QuantGPT, SavedFolderReloadsIdentically) {
  NoGradGuard g;
  for (auto f : {quant::QuantFormat::q8_0, quant::QuantFormat::q4_0}) {
    auto q = make_gpt(3);
    quantize_gpt(*q, f);
    const fs::path dir = test::scratch("gpt-" + quant::format_name(f));
    save_quantized_gpt(*q, f, dir.string());
    auto file = io::load_safetensors((dir / "model.safetensors").string());
    ASSERT_NE(file.find("lm_head.weight_q"), nullptr);
    EXPECT_EQ(file.find("lm_head.weight_q")->dtype(), DType::u8);
    EXPECT_EQ(file.find("lm_head.weight_q")->shape(), (Shape{40, int64_t(quant::row_bytes(f, 64))}));
    EXPECT_EQ(file.find("wte.weight"), nullptr);  // tied: stored once, as the head's blocks
    EXPECT_EQ(file.find("h.0.mlp.c_fc.weight"), nullptr);
    auto back = load_language_model(dir.string());
    const Tensor a = q->forward(ids()), b = back->forward(ids());
    EXPECT_EQ((a - b).abs().max().item(), 0.0) << quant::format_name(f);
    // Quantizing a reloaded model again changes nothing (already quantized layers are kept).
    auto again = std::dynamic_pointer_cast<GPT>(back);
    quantize_gpt(*again, f);
    EXPECT_EQ((again->forward(ids()) - a).abs().max().item(), 0.0);
  }
}

TEST(QuantGPT, BadFoldersFailClearly) {
  NoGradGuard g;
  auto q = make_gpt(4);
  quantize_gpt(*q, quant::QuantFormat::q8_0);
  const fs::path dir = test::scratch("gpt-bad");
  save_quantized_gpt(*q, quant::QuantFormat::q8_0, dir.string());
  // The config claims Q4_0 but the blocks are Q8_0 rows: a shape mismatch naming the tensor.
  std::ifstream in(dir / "config.json");
  nlohmann::json cfg = nlohmann::json::parse(in);
  cfg["quantization"]["format"] = "q4_0";
  test::write_file(dir / "config.json", cfg.dump());
  try {
    load_language_model(dir.string());
    FAIL() << "expected an error";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("weight_q"), std::string::npos) << e.what();
  }
  cfg["quantization"]["format"] = "q3_k";
  test::write_file(dir / "config.json", cfg.dump());
  EXPECT_THROW(load_language_model(dir.string()), Error);
  // Widths that are not whole blocks cannot be quantized.
  manual_seed(1);
  GPT odd({.vocab_size = 10, .n_positions = 8, .n_embd = 48, .n_layer = 1, .n_head = 2});
  EXPECT_THROW(quantize_gpt(odd, quant::QuantFormat::q8_0), Error);
}
