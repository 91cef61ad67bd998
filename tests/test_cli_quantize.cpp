// loom quantize as users run it: a GPT run folder (trained by loom train) becomes a Q8_0 / Q4_0 run folder
// that loom generate and loom eval use like any run (validation loss close to the float run's, greedy text
// produced), loom summary --checkpoint lists the block tensors and the total, and mistakes exit 2 / 1
// with messages naming the option or folder.
#include <gtest/gtest.h>

#include <filesystem>

#include <nlohmann/json.hpp>

#include "support/loom_cli.h"
#include "support/run_command.h"
#include "support/scratch.h"

using namespace loom;
namespace fs = std::filesystem;
using json = nlohmann::json;

using loom::test::loom_cmd;

namespace {

// One tiny GPT run for the whole file (training is the slow part).
const fs::path& trained_run() {
  static const fs::path run = [] {
    std::string text;
    const char* verses[] = {"In the beginning God created the heaven and the earth.\n",
                            "And the earth was without form, and void.\n",
                            "And God said, Let there be light: and there was light.\n"};
    for (int i = 0; i < 60; ++i) text += verses[(i * 5) % 3];
    const fs::path corpus = test::scratch("corpus.txt");
    test::write_file(corpus, text);
    const fs::path out = test::scratch("gpt");
    auto r = loom_cmd("train --model gpt --data text:" + corpus.string() +
                      " --tokenizer char --layers 1 --heads 2 --width 32 --context 16 --batch-size 4 --lr 1e-2"
                      " --steps 30 --threads 2 --seed 1 --out " + out.string() + " --json");
    EXPECT_EQ(r.status, 0) << r.err;
    return out;
  }();
  return run;
}

double val_loss(const fs::path& run) {
  auto r = loom_cmd("eval --checkpoint " + run.string() + " --val-split --json");
  EXPECT_EQ(r.status, 0) << r.err;
  return r.status == 0 ? json::parse(r.out)["loss"].get<double>() : 1e9;
}

}  // namespace

TEST(CliQuantize, QuantizedRunsEvalAndGenerate) {
  const fs::path run = trained_run();
  const double f32_loss = val_loss(run);
  for (auto [fmt, tol] : {std::pair{"q8_0", 0.01}, {"q4_0", 0.08}}) {
    const fs::path out = test::scratch(std::string("gpt-") + fmt);
    auto r = loom_cmd("quantize --checkpoint " + run.string() + " --format " + fmt + " --out " + out.string());
    ASSERT_EQ(r.status, 0) << r.err;
    EXPECT_NE(r.out.find(std::string("to ") + fmt), std::string::npos) << r.out;
    EXPECT_TRUE(fs::exists(out / "tokenizer.json"));
    EXPECT_LT(fs::file_size(out / "model.safetensors"), fs::file_size(run / "model.safetensors"));
    // Validation loss within a few percent of the float model's (relative).
    const double q_loss = val_loss(out);
    EXPECT_NEAR(q_loss, f32_loss, tol * f32_loss) << fmt;
    auto g = loom_cmd("generate --checkpoint " + out.string() + " --prompt 'And' --max-tokens 20 --greedy");
    ASSERT_EQ(g.status, 0) << g.err;
    EXPECT_EQ(g.out.rfind("And", 0), 0u) << g.out;
    EXPECT_GT(g.out.size(), 10u);
    // The size table names the block format and totals the bytes.
    auto s = loom_cmd("summary --checkpoint " + out.string());
    ASSERT_EQ(s.status, 0) << s.err;
    EXPECT_NE(s.out.find("h.0.attn.c_attn.weight_q"), std::string::npos) << s.out;
    EXPECT_NE(s.out.find(fmt), std::string::npos) << s.out;
    EXPECT_NE(s.out.find("total:"), std::string::npos) << s.out;
  }
}

TEST(CliQuantize, MistakesAreReported) {
  const fs::path run = trained_run();
  auto missing = loom_cmd("quantize --checkpoint " + run.string() + " --out " + test::scratch("x").string());
  EXPECT_EQ(missing.status, 2);
  EXPECT_NE(missing.err.find("--format"), std::string::npos) << missing.err;
  auto bad = loom_cmd("quantize --checkpoint " + run.string() + " --format q3_k --out " + test::scratch("y").string());
  EXPECT_EQ(bad.status, 2);
  EXPECT_NE(bad.err.find("q8_0"), std::string::npos) << bad.err;
  auto same = loom_cmd("quantize --checkpoint " + run.string() + " --format q8_0 --out " + run.string());
  EXPECT_EQ(same.status, 2);
  auto nodir = loom_cmd("quantize --checkpoint /nonexistent/run --format q8_0 --out " + test::scratch("z").string());
  EXPECT_EQ(nodir.status, 2);
  EXPECT_NE(nodir.err.find("/nonexistent/run"), std::string::npos) << nodir.err;
  auto sum = loom_cmd("summary --checkpoint /nonexistent/run");
  EXPECT_EQ(sum.status, 2);
}
