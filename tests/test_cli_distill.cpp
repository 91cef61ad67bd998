// loom distill as users run it: a tiny teacher run made here (LeNet, a few steps on a Fashion-MNIST subset)
// teaches an MLP student for a few batches; the student's run folder is a classifier run like loom train's,
// cached teacher logits train the same student as logits computed at every step, a resume with another
// temperature is refused, and a teacher that does not fit the data is named.
#include <gtest/gtest.h>
#include <unistd.h>

#include <filesystem>
#include <cmath>
#include <fstream>

#include <nlohmann/json.hpp>

#include "loom/loom.h"
#include "support/loom_cli.h"
#include "support/run_command.h"

using namespace loom;
namespace fs = std::filesystem;
using json = nlohmann::json;
using loom::test::json_lines;
using Result = loom::test::CommandResult;

using loom::test::slurp;
using loom::test::loom_cmd;

namespace {

const std::string kSmall = "--data fashion-mnist --train-samples 320 --test-samples 100 --batch-size 32 --threads 1";

// One teacher run for the whole file (a few seconds of LeNet), removed at exit.
class DistillCli : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    dir_ = fs::temp_directory_path() / ("loom_test_cli_distill_" + std::to_string(getpid()));
    fs::remove_all(dir_);
    fs::create_directories(dir_);
    Result t = loom_cmd("train --model lenet --steps 12 --progress none " + kSmall + " --out " + teacher().string());
    ASSERT_EQ(t.status, 0) << t.err;
  }
  static void TearDownTestSuite() { fs::remove_all(dir_); }
  static fs::path teacher() { return dir_ / "teacher"; }
  static fs::path dir_;
};
fs::path DistillCli::dir_;

}  // namespace

TEST_F(DistillCli, StudentRunFolderLikeTrain) {
  const fs::path s = dir_ / "student";
  Result r = loom_cmd("distill --teacher " + teacher().string() + " --model mlp --steps 8 --temperature 3 --alpha 0.8 " +
                      kSmall + " --json --out " + s.string());
  ASSERT_EQ(r.status, 0) << r.err;
  const std::vector<json> ev = json_lines(r.out);
  ASSERT_GE(ev.size(), 3u) << r.out;
  EXPECT_EQ(ev.front().at("event"), "teacher");
  EXPECT_EQ(ev.front().at("teacher_model"), "lenet");
  EXPECT_DOUBLE_EQ(ev.front().at("temperature").get<double>(), 3.0);
  const json& done = ev.back();
  ASSERT_EQ(done.at("event"), "done") << r.out;
  EXPECT_EQ(done.at("steps"), 8);
  EXPECT_GT(done.at("test_accuracy").get<double>(), 0.1);  // chance is 0.1; 8 steps learn something
  for (const char* f : {"model.safetensors", "checkpoint.safetensors", "config.json", "metrics.csv", "curves.png"})
    EXPECT_TRUE(fs::exists(s / f)) << f;
  const json cfg = json::parse(slurp(s / "config.json"));
  EXPECT_EQ(cfg.at("model"), "mlp");
  EXPECT_EQ(cfg.at("teacher"), teacher().string());
  EXPECT_DOUBLE_EQ(cfg.at("alpha").get<double>(), 0.8);
  // The student is an ordinary classifier run: loom eval reads it.
  Result e = loom_cmd("eval --checkpoint " + s.string() + " --test-samples 100 --json");
  ASSERT_EQ(e.status, 0) << e.err;
  EXPECT_DOUBLE_EQ(json::parse(e.out).at("accuracy").get<double>(), done.at("test_accuracy").get<double>());

  // Same run with the teacher's logits cached: the same lookups, so the same student up to the float
  // rounding of the teacher's batch sizes (256 when caching, 32 per step otherwise).
  const fs::path c = dir_ / "cached";
  Result rc = loom_cmd("distill --teacher " + teacher().string() + " --model mlp --steps 8 --temperature 3 --alpha 0.8 " +
                       kSmall + " --cache-teacher --json --out " + c.string());
  ASSERT_EQ(rc.status, 0) << rc.err;
  EXPECT_EQ(json_lines(rc.out).front().at("cached_samples"), 320);
  nn::StateDict a = train::read_weights((s / "model.safetensors").string());
  nn::StateDict b = train::read_weights((c / "model.safetensors").string());
  ASSERT_EQ(a.keys(), b.keys());
  for (const auto& [k, t] : a) EXPECT_LT(amax(abs(t - b.at(k))).item(), 1e-4) << k;
  // And not the student trained without the teacher (the loss did change the updates).
  Result plain = loom_cmd("train --model mlp --steps 8 --progress none " + kSmall + " --out " + (dir_ / "plain").string());
  ASSERT_EQ(plain.status, 0) << plain.err;
  nn::StateDict p = train::read_weights((dir_ / "plain" / "model.safetensors").string());
  EXPECT_GT(amax(abs(a.begin()->second - p.at(a.begin()->first))).item(), 1e-3);
}

TEST_F(DistillCli, ResumeKeepsTheTeacherOptions) {
  const fs::path s = dir_ / "resume";
  const std::string base = "distill --teacher " + teacher().string() + " --model mlp --progress none " + kSmall +
                           " --checkpoint-every 2 --out " + s.string();
  ASSERT_EQ(loom_cmd(base + " --steps 4").status, 0);
  Result bad = loom_cmd(base + " --steps 6 --temperature 3 --resume");
  EXPECT_EQ(bad.status, 1);
  EXPECT_NE(bad.err.find("--temperature"), std::string::npos) << bad.err;
  Result ok = loom_cmd(base + " --steps 6 --resume --json");
  ASSERT_EQ(ok.status, 0) << ok.err;
  EXPECT_EQ(json_lines(ok.out).back().at("steps"), 6);
}

TEST_F(DistillCli, BadTeachersAndOptionsAreNamed) {
  auto expect_error = [](const std::string& args, int status, const std::string& needle) {
    Result r = loom_cmd(args);
    EXPECT_EQ(r.status, status) << "loom " << args << "\n" << r.err;
    EXPECT_NE(r.err.find(needle), std::string::npos) << "loom " << args << ": stderr lacks '" << needle << "':\n"
                                                     << r.err;
  };
  const std::string t = " --teacher " + teacher().string();
  expect_error("distill --model mlp", 2, "--teacher is required");
  expect_error("distill" + t, 2, "--model is required");
  expect_error("distill" + t + " --model linreg", 2, "loom distill trains a classifier or language-model student");
  expect_error("distill" + t + " --model seq2seq", 2, "loom distill trains a classifier or language-model student");
  expect_error("distill" + t + " --model mlp --temperature 0", 2, "--temperature");
  expect_error("distill" + t + " --model mlp --alpha 1.5", 2, "--alpha");
  expect_error("distill" + t + " --model mlp --dp-noise 1", 2, "DP-SGD distillation is not supported");
  expect_error("distill --teacher " + (dir_ / "nowhere").string() + " --model mlp --steps 1 " + kSmall +
                   " --out " + (dir_ / "x").string(), 1, "nowhere");

  // A 2-class image folder: the 10-class Fashion-MNIST teacher cannot teach it.
  const fs::path img = dir_ / "folder";
  for (const char* cls : {"cat", "dog"}) {
    fs::create_directories(img / cls);
    for (int i = 0; i < 5; ++i) {
      train::Image png(8, 8);
      for (int y = 0; y < 8; ++y)
        for (int x = 0; x < 8; ++x) png.set(x, y, {uint8_t(40 * i), uint8_t(cls[0]), uint8_t(x * y)});
      train::write_png((img / cls / (std::to_string(i) + ".png")).string(), png);
    }
  }
  expect_error("distill" + t + " --model mlp --steps 1 --data imagefolder:" + img.string() + " --out " +
                   (dir_ / "y").string(), 1, "predicts 10 classes but imagefolder:");
}

// A language-model student from a language-model teacher: a 2-layer tiny GPT teaches a 1-layer one for a few
// steps on a small corpus; the run folder is an LM run; the tokenizer and the context are checked.
TEST_F(DistillCli, LanguageModelStudent) {
  std::string text;
  const char* verses[] = {"In the beginning God created the heaven and the earth.\n",
                          "And the earth was without form, and void.\n",
                          "And God said, Let there be light: and there was light.\n"};
  for (int i = 0; i < 40; ++i) text += verses[(i * 5) % 3];
  const fs::path corpus = dir_ / "corpus.txt", other = dir_ / "other.txt";
  std::ofstream(corpus, std::ios::binary) << text;
  std::ofstream(other, std::ios::binary) << "zzz qqq xxx " + text;
  const std::string gpt = " --model gpt --width 16 --heads 2 --batch-size 4 --threads 1 --eval-tokens 200 ";
  const fs::path t = dir_ / "lm-teacher", s = dir_ / "lm-student";
  Result rt = loom_cmd("train" + gpt + "--layers 2 --context 16 --steps 4 --data text:" + corpus.string() +
                       " --out " + t.string());
  ASSERT_EQ(rt.status, 0) << rt.err;
  Result r = loom_cmd("distill --teacher " + t.string() + gpt + "--layers 1 --context 16 --steps 3 --temperature 2 "
                      "--alpha 0.5 --data text:" + corpus.string() + " --json --out " + s.string());
  ASSERT_EQ(r.status, 0) << r.err;
  const std::vector<json> ev = json_lines(r.out);
  ASSERT_GE(ev.size(), 3u) << r.out;
  EXPECT_EQ(ev.front().at("event"), "teacher");
  EXPECT_EQ(ev.front().at("teacher_model"), "gpt");
  EXPECT_EQ(ev.back().at("event"), "done");
  EXPECT_EQ(ev.back().at("steps"), 3);
  EXPECT_TRUE(std::isfinite(ev.back().at("val_loss").get<double>()));
  const json cfg = json::parse(slurp(s / "config.json"));
  EXPECT_EQ(cfg.at("loom_train").at("teacher"), t.string());
  EXPECT_DOUBLE_EQ(cfg.at("loom_train").at("temperature").get<double>(), 2.0);
  EXPECT_EQ(cfg.at("n_layer"), 1);
  // The training loss is the distillation loss: not the plain student's cross-entropy.
  Result plain = loom_cmd("train" + gpt + "--layers 1 --context 16 --steps 3 --data text:" + corpus.string() +
                          " --json --out " + (dir_ / "lm-plain").string());
  ASSERT_EQ(plain.status, 0) << plain.err;
  EXPECT_GT(std::abs(json_lines(plain.out).back().at("loss").get<double>() - ev.back().at("loss").get<double>()), 1e-3);

  auto expect_error = [](const std::string& args, int status, const std::string& needle) {
    Result e = loom_cmd(args);
    EXPECT_EQ(e.status, status) << "loom " << args << "\n" << e.err;
    EXPECT_NE(e.err.find(needle), std::string::npos) << "loom " << args << ": stderr lacks '" << needle << "':\n"
                                                     << e.err;
  };
  const std::string base = "distill --teacher " + t.string() + gpt + "--layers 1 --steps 1 --out " + (dir_ / "z").string();
  expect_error(base + " --context 32 --data text:" + corpus.string(), 1, "reads at most 16 tokens");
  expect_error(base + " --context 16 --data text:" + other.string(), 1, "must share the tokenizer");
  expect_error(base + " --context 16 --cache-teacher --data text:" + corpus.string(), 2, "--cache-teacher");
  expect_error("distill --teacher " + teacher().string() + gpt + "--layers 1 --steps 1 --data text:" + corpus.string() +
                   " --out " + (dir_ / "z").string(), 2, "is not a language-model run");
  expect_error("distill --teacher " + t.string() + " --model mlp --steps 1 " + kSmall + " --out " + (dir_ / "z").string(),
               2, "is a language-model run");
}
