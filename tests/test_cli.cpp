// The loom command as users run it: exit statuses and messages for bad usage and runtime failures, info,
// and a small train -> eval -> predict round on Fashion-MNIST subsets (Debian's dataset-fashion-mnist).
#include <gtest/gtest.h>
#include <sys/wait.h>
#include <unistd.h>

#include <csignal>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <sstream>

#include <nlohmann/json.hpp>

#include "support/loom_cli.h"
#include "support/run_command.h"

#include "loom/loom.h"

using namespace loom;
namespace fs = std::filesystem;
using json = nlohmann::json;

using loom::test::slurp;
using loom::test::loom_cmd;

namespace {

const std::string kFmnist = "/usr/share/datasets/fashion-mnist";
const std::string kTestImages = kFmnist + "/t10k-images-idx3-ubyte.gz";

using Result = loom::test::CommandResult;
using loom::test::json_lines;

fs::path temp_dir(const std::string& name) {
  fs::path d = fs::temp_directory_path() / ("loom_test_cli_" + name + "_" + std::to_string(getpid()));
  fs::remove_all(d);
  fs::create_directories(d);
  return d;
}

void expect_usage_error(const std::string& args, const std::string& needle) {
  Result r = loom_cmd(args);
  EXPECT_EQ(r.status, 2) << "loom " << args << "\n" << r.err;
  EXPECT_NE(r.err.find(needle), std::string::npos) << "loom " << args << ": stderr lacks '" << needle << "':\n"
                                                   << r.err;
}

void expect_same_weights(const fs::path& a, const fs::path& b) {
  nn::StateDict wa = train::read_weights(a.string()), wb = train::read_weights(b.string());
  ASSERT_EQ(wa.keys(), wb.keys());
  for (const auto& [k, t] : wa)
    EXPECT_EQ(std::memcmp(t.raw_data(), wb.at(k).raw_data(), size_t(t.numel()) * 4), 0) << k << " differs";
}

const std::string kSmall = "--data fashion-mnist --train-samples 640 --test-samples 200 --batch-size 32 --threads 2";

}  // namespace

TEST(Cli, UsageErrorsExitTwoNamingTheOption) {
  expect_usage_error("", "missing command");
  expect_usage_error("frobnicate", "unknown command 'frobnicate'");
  expect_usage_error("train --model cnn --bogus 3", "unknown option '--bogus'");
  expect_usage_error("train --model resnet", "--model: invalid choice 'resnet'");
  expect_usage_error("train --model cnn --lr abc", "--lr: expected a number, got 'abc'");
  expect_usage_error("train --model cnn --lr -1", "--lr: -1 is out of range");
  expect_usage_error("train --model cnn --batch-size 0", "--batch-size");
  expect_usage_error("train --model cnn --epochs 2 --steps 3", "--epochs and --steps");
  expect_usage_error("train --model cnn --momentum 0.9", "--momentum applies to --optimizer sgd only");
  expect_usage_error("train --model cnn --data bogus:/x", "--data: unknown dataset 'bogus'");
  expect_usage_error("train --model cnn --epochs", "--epochs: missing value");
  expect_usage_error("train --epochs 1", "--model is required");
  expect_usage_error("train --model linreg", "--model linreg needs --data csv:FILE");
  expect_usage_error("eval", "--checkpoint is required");
  expect_usage_error("predict --checkpoint x", "IMAGE");
  expect_usage_error("summary --model cnn --data csv:x.csv", "--target");
  Result h = loom_cmd("train --help");
  EXPECT_EQ(h.status, 0);
  EXPECT_NE(h.out.find("--batch-size B"), std::string::npos) << h.out;
}

TEST(Cli, InfoAndSummaryRun) {
  Result r = loom_cmd("info");
  ASSERT_EQ(r.status, 0) << r.err;
  for (const char* s : {"loom 0.", "avx2", "avx512f", "amx", "threads:", "OpenBLAS", "MPI:", "CUDA:", "kernels:",
                        "gemm_bf16: ", "attention: "})
    EXPECT_NE(r.out.find(s), std::string::npos) << s << " missing from:\n" << r.out;
#ifdef LOOM_HAVE_MPI
  EXPECT_NE(r.out.find("MPI:         yes"), std::string::npos) << r.out;
#else
  EXPECT_NE(r.out.find("MPI:         no"), std::string::npos) << r.out;
#endif
  Result s = loom_cmd("summary --model cnn");
  ASSERT_EQ(s.status, 0) << s.err;
  EXPECT_NE(s.out.find("Total params: 121,930"), std::string::npos) << s.out;
  EXPECT_NE(s.out.find("[1, 64, 5, 5]"), std::string::npos) << s.out;
}

TEST(Cli, RuntimeErrorsExitOneWithAMessage) {
  Result r = loom_cmd("train --model cnn --data mnist:/nonexistent/dir --steps 1 --out /tmp/never");
  EXPECT_EQ(r.status, 1);
  EXPECT_NE(r.err.find("/nonexistent/dir"), std::string::npos) << r.err;
  r = loom_cmd("eval --checkpoint /nonexistent/run");
  EXPECT_EQ(r.status, 1);
  EXPECT_NE(r.err.find("no such file"), std::string::npos) << r.err;
  const fs::path d = temp_dir("corrupt");
  std::ofstream(d / "model.safetensors") << "definitely not safetensors";
  r = loom_cmd("predict --checkpoint " + d.string() + " idx:" + kTestImages + ":0");
  EXPECT_EQ(r.status, 1);
  EXPECT_NE(r.err.find("model.safetensors"), std::string::npos) << r.err;
  fs::remove_all(d);
}

TEST(Cli, TrainEvalPredictRound) {
  const fs::path d = temp_dir("round");
  Result t = loom_cmd("train --model mlp --steps 20 " + kSmall + " --json --out " + d.string());
  ASSERT_EQ(t.status, 0) << t.err;
  const std::vector<json> events = json_lines(t.out);
  ASSERT_FALSE(events.empty());
  const json& done = events.back();
  ASSERT_EQ(done.at("event"), "done") << t.out;
  const double acc = done.at("test_accuracy");
  EXPECT_GT(acc, 0.3);  // 20 steps of Adam on 640 images: far above chance (0.1)
  EXPECT_GT(done.at("train_samples_per_s").get<double>(), 0);
  EXPECT_GT(done.at("peak_rss_mb").get<double>(), 0);
  EXPECT_EQ(done.at("steps"), 20);
  EXPECT_EQ(events.front().at("event"), "start");
  for (const char* f : {"model.safetensors", "checkpoint.safetensors", "config.json", "metrics.csv", "curves.png"})
    EXPECT_TRUE(fs::exists(d / f)) << f;
  EXPECT_EQ(slurp(d / "metrics.csv").substr(0, 56), "epoch,train_loss,train_acc,val_loss,val_acc,lr,seconds,s");
  const json cfg = json::parse(slurp(d / "config.json"));
  EXPECT_EQ(cfg.at("model"), "mlp");
  EXPECT_NEAR(cfg.at("normalization").at("mean").at(0).get<double>(), 0.286, 0.02);  // Fashion-MNIST's mean pixel
  EXPECT_NEAR(cfg.at("normalization").at("std").at(0).get<double>(), 0.353, 0.02);

  Result e = loom_cmd("eval --checkpoint " + d.string() + " --test-samples 200 --json");
  ASSERT_EQ(e.status, 0) << e.err;
  const json ev = json::parse(e.out);
  EXPECT_DOUBLE_EQ(ev.at("accuracy").get<double>(), acc);  // same weights, same 200 test images
  EXPECT_EQ(ev.at("samples"), 200);
  Result et = loom_cmd("eval --checkpoint " + (d / "checkpoint.safetensors").string() + " --test-samples 200");
  ASSERT_EQ(et.status, 0) << et.err;
  EXPECT_NE(et.out.find("confusion matrix"), std::string::npos) << et.out;

  Result p = loom_cmd("predict --checkpoint " + d.string() + " idx:" + kTestImages + ":0 idx:" + kTestImages + ":1");
  ASSERT_EQ(p.status, 0) << p.err;
  EXPECT_NE(p.out.find("(true class: Ankle boot)"), std::string::npos) << p.out;  // test image 0 is an ankle boot
  EXPECT_NE(p.out.find("(true class: Pullover)"), std::string::npos) << p.out;
  EXPECT_EQ(std::count(p.out.begin(), p.out.end(), '%'), 10) << p.out;  // top-5 for each image

  // A PNG of the same test image gives the same ranking as the idx: form.
  Tensor img = data::read_idx(kTestImages).select(0, 0).contiguous();
  train::Image png(28, 28);
  for (int y = 0; y < 28; ++y)
    for (int x = 0; x < 28; ++x) {
      const uint8_t v = img.data<uint8_t>()[y * 28 + x];
      png.set(x, y, {v, v, v});
    }
  train::write_png((d / "boot.png").string(), png);
  Result pj = loom_cmd("predict --json --checkpoint " + d.string() + " " + (d / "boot.png").string() +
                       " idx:" + kTestImages + ":0");
  ASSERT_EQ(pj.status, 0) << pj.err;
  const std::vector<json> preds = json_lines(pj.out);
  ASSERT_EQ(preds.size(), 2u);
  EXPECT_EQ(preds[0].at("top"), preds[1].at("top"));
  double total = 0, prev = 1;
  for (const auto& c : preds[0].at("top")) {
    EXPECT_LE(c.at("probability").get<double>(), prev);
    prev = c.at("probability");
    total += prev;
  }
  EXPECT_LE(total, 1.0 + 1e-6);
  fs::remove_all(d);
}

TEST(Cli, KilledRunResumesBitIdentical) {
  const fs::path d = temp_dir("kill");
  const std::string common = "train --model mlp --steps 60 --seed 3 --checkpoint-every 4 --progress none " + kSmall;
  ASSERT_EQ(loom_cmd(common + " --out " + (d / "straight").string()).status, 0);

  // The interrupted run is killed with SIGKILL once it has saved a checkpoint, at whatever point it has
  // reached (possibly in the middle of writing the next one).
  const fs::path run = d / "killed";
  const std::string cmd =
      "exec " + std::string(LOOM_BIN) + " " + common + " --out " + run.string() + " >/dev/null 2>&1";
  const pid_t pid = fork();
  ASSERT_GE(pid, 0);
  if (pid == 0) {
    execl("/bin/sh", "sh", "-c", cmd.c_str(), (char*)nullptr);
    _exit(127);
  }
  for (int i = 0; i < 6000 && !fs::exists(run / "checkpoint.safetensors"); ++i) usleep(5000);
  kill(pid, SIGKILL);
  int st = 0;
  waitpid(pid, &st, 0);
  ASSERT_TRUE(fs::exists(run / "checkpoint.safetensors"));
  ASSERT_TRUE(WIFSIGNALED(st)) << "the run finished before it could be killed";

  Result r = loom_cmd(common + " --out " + run.string() + " --resume");
  ASSERT_EQ(r.status, 0) << r.err;
  EXPECT_NE(r.out.find("resuming from"), std::string::npos) << r.out;
  expect_same_weights(d / "straight" / "model.safetensors", run / "model.safetensors");
  // The per-epoch numbers (everything but the timings) continue the same history.
  auto strip_times = [](const std::string& csv) {
    std::string out;
    std::istringstream in(csv);
    for (std::string line; std::getline(in, line);) out += line.substr(0, line.rfind(",", line.rfind(",") - 1)) + "\n";
    return out;
  };
  EXPECT_EQ(strip_times(slurp(d / "straight" / "metrics.csv")), strip_times(slurp(run / "metrics.csv")));
  // Resuming with another model is refused with a message.
  Result bad = loom_cmd("train --model cnn --steps 60 --seed 3 " + kSmall + " --out " + run.string() + " --resume");
  EXPECT_EQ(bad.status, 1);
  EXPECT_NE(bad.err.find("model"), std::string::npos) << bad.err;
  fs::remove_all(d);
}

// `loom train --help` is one text: the common options once, then each task's own options under its heading.
TEST(Cli, TrainHelpListsCommonOptionsOnceThenEachTask) {
  Result h = loom_cmd("train --help");
  ASSERT_EQ(h.status, 0) << h.err;
  auto count = [&](const std::string& s) {
    size_t n = 0;
    for (size_t at = h.out.find(s); at != std::string::npos; at = h.out.find(s, at + 1)) ++n;
    return n;
  };
  for (const char* o : {"--lr X", "--batch-size B", "--optimizer {", "--scheduler {", "--epochs N", "--steps N",
                        "--seed S", "--threads T", "--out DIR", "--resume ", "--json ", "--clip-grad-norm X",
                        "--weight-decay W", "--momentum M", "--log-every N", "--checkpoint-every N"})
    EXPECT_EQ(count(std::string("\n  ") + o), 1u) << o << " is not listed exactly once:\n" << h.out;
  const size_t common = h.out.find("common options"), cls = h.out.find("\nclassifier options"),
               reg = h.out.find("\nregression options"), lm = h.out.find("\nlanguage model options"),
               s2s = h.out.find("\nseq2seq options"), resuming = h.out.find("\nresuming");
  ASSERT_NE(common, std::string::npos) << h.out;
  ASSERT_NE(resuming, std::string::npos) << h.out;
  EXPECT_TRUE(common < cls && cls < reg && reg < lm && lm < s2s && s2s < resuming) << h.out;
  auto within = [&](const std::string& o, size_t from, size_t to) {
    const size_t at = h.out.find("\n  " + o);
    EXPECT_TRUE(at != std::string::npos && at > from && at < to) << o << " not under its task:\n" << h.out;
  };
  within("--image-size N", cls, reg);
  within("--dp-noise S", cls, reg);
  within("--target COL", reg, lm);
  within("--width W", lm, s2s);
  within("--warmup N", lm, s2s);
  within("--attention {", s2s, resuming);
  within("--teacher-forcing P", s2s, resuming);
  // Asked for with a --model, the help is the same text.
  EXPECT_EQ(loom_cmd("train --model gpt --help").out, h.out);
  // Common options a task does not take, and schedulers it does not support, are usage errors naming them.
  expect_usage_error("train --model gpt --epochs 2", "--epochs does not apply to --model gpt");
  expect_usage_error("train --model lstm-lm --scheduler plateau", "--scheduler plateau");
  expect_usage_error("train --model seq2seq --scheduler step", "--scheduler step: the seq2seq task supports");
  expect_usage_error("train --model mlp --dp-noise 1 --scheduler cosine", "--scheduler does not apply to DP-SGD");
}

// --resume with an option that shapes the run changed is refused, naming the option, both values and the fix;
// an option that may change (--checkpoint-every, --threads, ...) is applied and said so.
TEST(Cli, ResumeRefusesChangedOptionsAndAppliesThoseThatMayChange) {
  const fs::path d = temp_dir("resume_opts");
  const std::string base = "train --model mlp --seed 1 --progress none " + kSmall + " --out " + d.string();
  ASSERT_EQ(loom_cmd(base + " --steps 4 --checkpoint-every 2").status, 0);
  Result lr = loom_cmd(base + " --steps 8 --checkpoint-every 2 --lr 0.01 --resume");
  EXPECT_EQ(lr.status, 1);
  for (const char* s : {"cannot resume", "made with --lr 0.001", "this run has --lr 0.01", "resume with --lr 0.001",
                        "another --out"})
    EXPECT_NE(lr.err.find(s), std::string::npos) << s << " missing from:\n" << lr.err;
  Result clip = loom_cmd(base + " --steps 8 --checkpoint-every 2 --clip-grad-norm 1 --resume");
  EXPECT_EQ(clip.status, 1);
  EXPECT_NE(clip.err.find("--clip-grad-norm 0, this run has --clip-grad-norm 1"), std::string::npos) << clip.err;
  Result bs = loom_cmd("train --model mlp --seed 1 --progress none --data fashion-mnist --train-samples 640 "
                       "--test-samples 200 --batch-size 16 --threads 2 --out " + d.string() + " --steps 8 --resume");
  EXPECT_EQ(bs.status, 1);
  EXPECT_NE(bs.err.find("--batch-size 32, this run has --batch-size 16"), std::string::npos) << bs.err;
  Result ok = loom_cmd(base + " --steps 8 --checkpoint-every 3 --resume --json");
  ASSERT_EQ(ok.status, 0) << ok.err;
  EXPECT_NE(ok.out.find("resuming with --checkpoint-every 3 (the checkpoint's run had 2"), std::string::npos)
      << ok.out;
  EXPECT_EQ(json_lines(ok.out).back().at("steps"), 8);
  fs::remove_all(d);
}
