// loom prune and loom train --init as users run them, on a tiny cnn run (a few steps on a Fashion-MNIST subset):
// a structurally pruned run is a narrower model that eval/summary load from its recorded widths; an l1 run keeps
// weight_orig + weight_mask, and fine-tuning it with --init keeps the mask fixed; mistakes exit 2 naming the
// option.
#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>
#include <sstream>

#include <nlohmann/json.hpp>

#include "loom/io/safetensors.h"
#include "support/loom_cli.h"
#include "support/run_command.h"
#include "support/scratch.h"

using namespace loom;
namespace fs = std::filesystem;
using json = nlohmann::json;

using loom::test::loom_cmd;
using loom::test::read_json;

namespace {

const std::string kData = "--data fashion-mnist --train-samples 256 --test-samples 64 --batch-size 32 --threads 1";

const fs::path& trained_run() {
  return test::trained_once("cnn", "train --model cnn " + kData + " --steps 6 --progress none --seed 1");
}
json eval(const fs::path& run) { return test::eval_json(run, "--data fashion-mnist --test-samples 64 --threads 1"); }

std::map<std::string, Tensor> tensors(const fs::path& run) {
  std::map<std::string, Tensor> m;
  for (const auto& [k, t] : io::load_safetensors((run / "model.safetensors").string()).tensors) m[k] = t;
  return m;
}

}  // namespace

TEST(CliPrune, StructuredRunIsNarrowerAndLoadsLikeAnyRun) {
  const fs::path out = test::scratch("cnn-structured");
  auto r = loom_cmd("prune --checkpoint " + trained_run().string() +
                    " --method structured --amount 0.5 --out " + out.string());
  ASSERT_EQ(r.status, 0) << r.err;
  EXPECT_NE(r.out.find("widths: 16, 32, 32"), std::string::npos) << r.out;
  auto t = tensors(out);
  EXPECT_EQ(t["0.weight"].shape(), (Shape{16, 1, 3, 3}));
  EXPECT_EQ(t["3.weight"].shape(), (Shape{32, 16, 3, 3}));
  EXPECT_EQ(t["7.weight"].shape(), (Shape{32, 32 * 5 * 5}));
  EXPECT_EQ(t["9.weight"].shape(), (Shape{10, 32}));
  const json cfg = read_json(out / "config.json");
  EXPECT_EQ(cfg["pruning"]["method"], "structured");
  EXPECT_LT(cfg["num_parameters"].get<int64_t>(), 60000);
  const json e = eval(out);
  EXPECT_EQ(e["samples"], 64);
  EXPECT_TRUE(e.contains("accuracy"));
  auto s = loom_cmd("summary --checkpoint " + out.string());
  EXPECT_EQ(s.status, 0) << s.err;
  // Fine-tuning the narrow run trains the narrow model.
  const fs::path tuned = test::scratch("cnn-structured-tuned");
  auto f = loom_cmd("train --model cnn " + kData + " --steps 2 --progress none --init " + out.string() + " --out " +
                    tuned.string());
  ASSERT_EQ(f.status, 0) << f.err;
  EXPECT_EQ(tensors(tuned)["3.weight"].shape(), (Shape{32, 16, 3, 3}));
  EXPECT_EQ(read_json(tuned / "config.json")["num_parameters"], cfg["num_parameters"]);
}

TEST(CliPrune, UnstructuredMasksStayFixedWhileFineTuning) {
  const fs::path out = test::scratch("cnn-l1");
  auto r = loom_cmd("prune --checkpoint " + trained_run().string() + " --method l1 --amount 0.5 --out " +
                    out.string());
  ASSERT_EQ(r.status, 0) << r.err;
  auto t = tensors(out);
  ASSERT_TRUE(t.count("7.weight_orig") && t.count("7.weight_mask")) << r.out;
  EXPECT_FALSE(t.count("7.weight"));
  double zeros = 0;
  for (double v : t["7.weight_mask"].tolist()) zeros += v == 0;
  EXPECT_EQ(zeros, 0.5 * double(t["7.weight_mask"].numel()));
  EXPECT_TRUE(eval(out).contains("accuracy"));  // eval folds the masks in

  const fs::path tuned = test::scratch("cnn-l1-tuned");
  auto f = loom_cmd("train --model cnn " + kData + " --steps 3 --progress none --init " + out.string() + " --out " +
                    tuned.string());
  ASSERT_EQ(f.status, 0) << f.err;
  auto u = tensors(tuned);
  ASSERT_TRUE(u.count("7.weight_mask"));
  EXPECT_EQ(u["7.weight_mask"].tolist(), t["7.weight_mask"].tolist());
  EXPECT_NE(u["7.weight_orig"].tolist(), t["7.weight_orig"].tolist());  // it did train
  // Pruning the pruned run again composes: half of what is left.
  const fs::path again = test::scratch("cnn-l1-again");
  ASSERT_EQ(loom_cmd("prune --checkpoint " + out.string() + " --method global --amount 0.5 --out " + again.string())
                .status,
            0);
  double zeros2 = 0, total = 0;
  for (const auto& [k, v] : tensors(again))
    if (k.ends_with("weight_mask"))
      for (double x : v.tolist()) zeros2 += x == 0, total += 1;
  EXPECT_NEAR(zeros2 / total, 0.75, 0.01);
}

TEST(CliPrune, MistakesNameTheOption) {
  const std::string run = trained_run().string();
  auto usage = [&](const std::string& args, const std::string& msg) {
    auto r = loom_cmd(args);
    EXPECT_EQ(r.status, 2) << args << "\n" << r.err;
    EXPECT_NE(r.err.find(msg), std::string::npos) << args << "\n" << r.err;
  };
  usage("prune --checkpoint " + run + " --method l1", "are all required");
  usage("prune --checkpoint " + run + " --method l1 --amount 1.5 --out /tmp/x", "--amount");
  usage("prune --checkpoint " + run + " --method l1 --amount 0.5 --norm 1 --out /tmp/x", "--norm applies");
  usage("prune --checkpoint " + run + " --method l1 --amount 0.5 --out " + run, "must differ");
  usage("train --model mlp " + kData + " --steps 1 --init " + run + " --out " + test::scratch("bad").string(),
        "holds a cnn model");
  usage("train --model gpt --init " + run, "--init");
  auto missing = loom_cmd("prune --checkpoint /nonexistent --method l1 --amount 0.5 --out /tmp/x");
  EXPECT_EQ(missing.status, 1);
  EXPECT_NE(missing.err.find("/nonexistent"), std::string::npos) << missing.err;
}
