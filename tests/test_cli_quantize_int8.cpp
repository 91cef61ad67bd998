// loom quantize --format int8 as users run it: a tiny cnn run (trained here for a few dozen steps on a Fashion-MNIST
// subset) becomes an int8 run folder that eval, predict and summary load like any run: accuracy close to the float
// run's, the file under a third of the size, the int8 tensors listed; mistakes exit 2 naming the option or folder.
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

const std::string kData = "--data fashion-mnist --train-samples 2048 --test-samples 256 --batch-size 32 --threads 1";
const std::string kTestImages = "/usr/share/datasets/fashion-mnist/t10k-images-idx3-ubyte.gz";

const fs::path& trained_run() {
  return test::trained_once("cnn", "train --model cnn " + kData + " --steps 60 --progress none --seed 1");
}
json eval(const fs::path& run) { return test::eval_json(run, "--data fashion-mnist --test-samples 256 --threads 1"); }

}  // namespace

TEST(CliQuantizeInt8, CnnRunEvaluatesPredictsAndShrinks) {
  const fs::path out = test::scratch("cnn-int8");
  auto q = loom_cmd("quantize --checkpoint " + trained_run().string() + " --format int8 --out " + out.string());
  ASSERT_EQ(q.status, 0) << q.err;
  EXPECT_NE(q.out.find("layers 3, 7, 9"), std::string::npos) << q.out;  // the 1-channel first conv stays float

  const auto f = io::load_safetensors((out / "model.safetensors").string());
  std::map<std::string, Tensor> t(f.tensors.begin(), f.tensors.end());
  EXPECT_EQ(t["3.weight_int8"].shape(), (Shape{64, 32, 3, 3}));
  EXPECT_EQ(t["0.weight"].shape(), (Shape{32, 1, 3, 3}));
  EXPECT_EQ(t["7.weight_int8"].shape(), (Shape{64, 64 * 5 * 5}));
  EXPECT_EQ(t["7.weight_scale"].shape(), (Shape{64}));
  EXPECT_EQ(t.count("7.weight"), 0u);
  EXPECT_EQ(f.metadata.at("loom.quantization"), "int8");
  EXPECT_EQ(read_json(out / "config.json")["quantization"]["format"], "int8");
  const double f32_bytes = double(fs::file_size(trained_run() / "model.safetensors"));
  const double int8_bytes = double(fs::file_size(out / "model.safetensors"));
  EXPECT_LT(int8_bytes, 0.3 * f32_bytes);

  const json ef = eval(trained_run()), e8 = eval(out);
  ASSERT_TRUE(ef.contains("accuracy") && e8.contains("accuracy"));
  EXPECT_GT(ef["accuracy"].get<double>(), 0.5) << "the float run should have learned something in 60 steps";
  EXPECT_NEAR(e8["accuracy"].get<double>(), ef["accuracy"].get<double>(), 0.03);
  EXPECT_EQ(e8["samples"], 256);

  auto pf = loom_cmd("predict --checkpoint " + trained_run().string() + " idx:" + kTestImages + ":0 --threads 1");
  auto p8 = loom_cmd("predict --checkpoint " + out.string() + " idx:" + kTestImages + ":0 --threads 1");
  ASSERT_EQ(pf.status, 0) << pf.err;
  ASSERT_EQ(p8.status, 0) << p8.err;
  EXPECT_FALSE(p8.out.empty());

  auto s = loom_cmd("summary --checkpoint " + out.string());
  ASSERT_EQ(s.status, 0) << s.err;
  EXPECT_NE(s.out.find("7.weight_int8"), std::string::npos) << s.out;
  EXPECT_NE(s.out.find("int8"), std::string::npos) << s.out;
}

TEST(CliQuantizeInt8, MistakesAreReported) {
  const fs::path out = test::scratch("cnn-int8-m");
  auto q = loom_cmd("quantize --checkpoint " + trained_run().string() + " --format int8 --out " + out.string());
  ASSERT_EQ(q.status, 0) << q.err;
  // A float format on an image run, int8 on an already-int8 run, fine-tuning or pruning an int8 run.
  auto blocks = loom_cmd("quantize --checkpoint " + trained_run().string() + " --format q8_0 --out " +
                         test::scratch("b").string());
  EXPECT_EQ(blocks.status, 2);
  EXPECT_NE(blocks.err.find("--format int8"), std::string::npos) << blocks.err;
  auto again = loom_cmd("quantize --checkpoint " + out.string() + " --format int8 --out " + test::scratch("c").string());
  EXPECT_EQ(again.status, 2);
  EXPECT_NE(again.err.find("already quantized"), std::string::npos) << again.err;
  auto tune = loom_cmd("train --model cnn " + kData + " --steps 1 --progress none --init " + out.string() + " --out " +
                       test::scratch("d").string());
  EXPECT_NE(tune.status, 0);
  EXPECT_NE(tune.err.find("inference only"), std::string::npos) << tune.err;
  for (const char* method : {"structured", "l1"}) {
    auto prune = loom_cmd("prune --checkpoint " + out.string() + " --method " + method + " --amount 0.5 --out " +
                          test::scratch(std::string("p") + method).string());
    EXPECT_NE(prune.status, 0) << method;
    EXPECT_NE(prune.err.find("inference only"), std::string::npos) << method << ": " << prune.err;
  }
  auto nodir = loom_cmd("quantize --checkpoint /nonexistent/run --format int8 --out " + test::scratch("e").string());
  EXPECT_EQ(nodir.status, 2);
  EXPECT_NE(nodir.err.find("/nonexistent/run"), std::string::npos) << nodir.err;
}
