// Hugging Face GPT-2 folders: a randomly initialised GPT-2 written by plain torch (tests/support/gpt2_ref.py,
// HF's names and Conv1D (in, out) layout, with or without "transformer.", f32 or bf16) loads through
// load_language_model and gives torch's logits and loss; what loom writes reads back in torch the same way.
#include <gtest/gtest.h>

#include <cmath>
#include <filesystem>
#include <fstream>

#include "loom/loom.h"
#include "loom/models/gpt.h"
#include "loom/models/gpt_hf.h"
#include "support/torch_oracle.h"

using namespace loom;
using loom::models::GPT;
using loom::test::torch_run;
namespace fs = std::filesystem;

namespace {

const std::string kRef = std::string("exec(open('") + LOOM_TEST_DIR + "/support/gpt2_ref.py').read(), globals())\n";

fs::path temp_dir(const std::string& name) {
  fs::path p = fs::temp_directory_path() / ("loom_test_gpt_hf_" + std::to_string(getpid()) + "_" + name);
  fs::remove_all(p);
  return p;
}

std::string py_str(const fs::path& p) { return "'" + p.string() + "'"; }

struct Case {
  std::string name, prefix, dtype;
  bool tied;
};

}  // namespace

class HFFolder : public ::testing::TestWithParam<Case> {};

TEST_P(HFFolder, LoadsWithTorchLogitsAndLoss) {
  const Case c = GetParam();
  const fs::path dir = temp_dir(c.name);
  manual_seed(1);
  Tensor idx = randint(0, 13, {2, 9}), y = randint(0, 13, {2, 9});
  // Older HF files carry the causal-mask buffers (attn.bias / attn.masked_bias); tied ones may carry lm_head.
  const std::string extra = c.prefix.empty() ? "[]" : "['transformer.h.0.attn.bias', 'transformer.h.1.attn.masked_bias']";
  auto r = torch_run(kRef + "cfg = {'vocab_size': 13, 'n_positions': 12, 'n_embd': 12, 'n_layer': 2, 'n_head': 3, "
                              "'tie_word_embeddings': " + (c.tied ? "True" : "False") + "}\n" +
                         "sd = random_gpt2(cfg, 5)\n"
                         "dt = torch." + c.dtype + "\n"
                         "sd = {k: v.to(dt).float() for k, v in sd.items()}\n"  // what the file holds, exactly
                         "files = dict(sd)\n"
                         "if cfg['tie_word_embeddings'] and " + (c.prefix.empty() ? "False" : "True") +
                         ": files['lm_head.weight'] = sd['wte.weight']\n"
                         "write_hf_folder(" + py_str(dir) + ", cfg, files, prefix='" + c.prefix + "', extra=" + extra +
                         ", dtype=dt)\n"
                         "logits = gpt2_forward(sd, cfg, idx)\n"
                         "out['logits'] = logits; out['loss'] = F.cross_entropy(logits.view(-1, 13), y.view(-1))\n",
                     {{"idx", idx}, {"y", y}});
  auto lm = models::load_language_model(dir.string());
  ASSERT_NE(dynamic_cast<GPT*>(lm.get()), nullptr);
  EXPECT_EQ(lm->context(), 12);
  EXPECT_EQ(lm->vocab_size(), 13);
  lm->eval();  // HF configs carry dropout 0.1
  NoGradGuard g;
  Tensor logits = (*lm)(idx);
  EXPECT_PARITY("logits", logits, r.at("logits"));
  const double ours = cross_entropy(logits.view({-1, 13}), y.view({-1})).item(), theirs = r.at("loss").item();
  EXPECT_LE(std::abs(ours - theirs), 1e-4 * std::abs(theirs)) << "loss " << ours << " vs torch " << theirs;
  fs::remove_all(dir);
}

INSTANTIATE_TEST_SUITE_P(Layouts, HFFolder,
                         ::testing::Values(Case{"plain", "", "float32", true},
                                           Case{"prefixed", "transformer.", "float32", true},
                                           Case{"untied", "", "float32", false},
                                           Case{"bf16", "transformer.", "bfloat16", true}),
                         [](const auto& info) { return info.param.name; });

// loom writes HF's layout: torch reads the folder with its own reader and gets loom's logits; loom reads it back.
TEST(HFFolderWrite, TorchReadsWhatLoomWrites) {
  for (bool tied : {true, false}) {
    const fs::path dir = temp_dir(tied ? "write_tied" : "write_untied");
    auto lm = models::make_language_model({{"arch", "gpt"}, {"vocab_size", 10}, {"n_positions", 8}, {"n_embd", 8},
                                           {"n_layer", 2}, {"n_head", 2}, {"tie_word_embeddings", tied}});
    {
      NoGradGuard g;
      for (auto& p : lm->parameters()) p.add_(randn(p.shape()) * 0.1);
    }
    lm->save(dir.string(), {{"tokenizer", "char"}});
    manual_seed(2);
    Tensor idx = randint(0, 10, {1, 8});
    Tensor ours;
    {
      NoGradGuard g;
      ours = (*lm)(idx);
    }
    auto r = torch_run(kRef + "cfg, sd, meta = read_hf_folder(" + py_str(dir) + ")\n"
                              "assert meta == {'format': 'pt', 'tokenizer': 'char'}, meta\n"
                              "assert cfg['arch'] == 'gpt' and cfg['model_type'] == 'gpt2', cfg\n"
                              "assert tuple(sd['h.1.attn.c_attn.weight'].shape) == (8, 24)\n"
                              "assert tuple(sd['h.0.mlp.c_fc.weight'].shape) == (8, 32)\n"
                              "assert ('lm_head.weight' in sd) == (not cfg['tie_word_embeddings'])\n"
                              "assert not any(k.startswith('transformer.') for k in sd)\n"
                              "out['logits'] = gpt2_forward(sd, cfg, idx)\n",
                       {{"idx", idx}});
    EXPECT_PARITY(std::string("logits, tied=") + (tied ? "true" : "false"), ours, r.at("logits"));
    auto back = models::load_language_model(dir.string());
    NoGradGuard g;
    EXPECT_PARITY("reloaded logits", (*back)(idx), ours, 1e-7);
    fs::remove_all(dir);
  }
}

TEST(HFFolderWrite, BadFoldersFailNamingTheProblem) {
  const fs::path dir = temp_dir("bad");
  GPT m(models::GPTConfig{.vocab_size = 10, .n_positions = 8, .n_embd = 8, .n_layer = 1, .n_head = 2});
  m.save(dir.string());
  // A config that does not fit the weights (wider model): load fails naming the tensor.
  auto cfg = m.config();
  cfg["n_layer"] = 2;
  std::ofstream(dir / "config.json") << cfg.dump();
  try {
    models::load_gpt_hf(dir.string());
    ADD_FAILURE() << "loading weights for 1 layer into 2 layers did not throw";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("h.1."), std::string::npos) << e.what();
  }
  // A tied head whose lm_head.weight differs from wte.
  auto tensors = models::gpt_hf_tensors(m);
  tensors.emplace_back("lm_head.weight", randn({10, 8}));
  io::save_safetensors((dir / "model.safetensors").string(), tensors);
  std::ofstream(dir / "config.json") << m.config().dump();
  EXPECT_THROW(models::load_gpt_hf(dir.string()), Error);
  fs::remove(dir / "model.safetensors");
  EXPECT_THROW(models::load_language_model(dir.string()), Error);
  fs::remove_all(dir);
}
