// `loom train --model seq2seq --data dates` as users run it: a few steps with --json (the events and their keys,
// the run folder), `loom translate` on the saved run, and usage errors. The full 99% run is measured in the
// report, not here.
#include <gtest/gtest.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cstdio>
#include <filesystem>
#include <fstream>
#include <sstream>

#include <nlohmann/json.hpp>

#include "support/loom_cli.h"
#include "support/run_command.h"

using json = nlohmann::json;
namespace fs = std::filesystem;

using loom::test::loom_cmd;

namespace {

using Result = loom::test::CommandResult;
using loom::test::json_lines;

TEST(CliSeq2Seq, TrainsAFewStepsWithJsonAndTranslates) {
  const fs::path run = fs::temp_directory_path() / ("loom_test_cli_s2s_" + std::to_string(getpid()));
  fs::remove_all(run);
  Result r = loom_cmd("train --model seq2seq --data dates --steps 6 --batch-size 16 --train-samples 200 "
                      "--test-samples 24 --embed 8 --hidden 8 --threads 1 --log-every 3 --json --out " +
                      run.string());
  ASSERT_EQ(r.status, 0) << r.err << r.out;
  const auto events = json_lines(r.out);
  ASSERT_GE(events.size(), 4u) << r.out;
  EXPECT_EQ(events.front()["event"], "start");
  for (const char* k : {"model", "data", "attention", "parameters", "train_samples", "test_samples", "steps_per_epoch",
                        "threads", "out"})
    EXPECT_TRUE(events.front().contains(k)) << "start lacks " << k;
  EXPECT_EQ(events.front()["test_samples"], 24);
  int steps = 0;
  for (const auto& e : events)
    if (e["event"] == "step") {
      ++steps;
      for (const char* k : {"step", "loss", "samples_per_s", "lr"}) EXPECT_TRUE(e.contains(k)) << "step lacks " << k;
    }
  EXPECT_EQ(steps, 2);
  const json& done = events.back();
  ASSERT_EQ(done["event"], "done") << r.out;
  for (const char* k : {"test_exact_match", "test_loss", "train_loss", "train_samples_per_s", "train_seconds", "steps",
                        "epochs_completed", "seconds", "peak_rss_mb", "out"})
    EXPECT_TRUE(done.contains(k)) << "done lacks " << k;
  EXPECT_EQ(done["steps"], 6);
  EXPECT_GE(done["test_exact_match"].get<double>(), 0.0);
  EXPECT_LE(done["test_exact_match"].get<double>(), 1.0);
  EXPECT_GT(done["train_samples_per_s"].get<double>(), 0.0);
  for (const char* f : {"model.safetensors", "config.json", "metrics.csv"})
    EXPECT_TRUE(fs::exists(run / f)) << f << " missing from the run folder";
  std::ifstream cf(run / "config.json");
  const json cfg = json::parse(cf);
  EXPECT_EQ(cfg["arch"], "seq2seq");
  EXPECT_EQ(cfg["task"], "dates");

  Result t = loom_cmd("translate --checkpoint " + run.string() + " --json \"March 5, 1999\" \"05/03/99\"");
  ASSERT_EQ(t.status, 0) << t.err;
  const auto lines = json_lines(t.out);
  ASSERT_EQ(lines.size(), 2u) << t.out;
  EXPECT_EQ(lines[0]["input"], "March 5, 1999");
  EXPECT_TRUE(lines[0]["output"].is_string());
  Result beam = loom_cmd("translate --checkpoint " + run.string() + " --beam 3 --json \"5th of March 1999\"");
  ASSERT_EQ(beam.status, 0) << beam.err;
  EXPECT_TRUE(json_lines(beam.out).at(0).contains("log_prob"));
  fs::remove_all(run);
}

// Through the one training loop, a seq2seq run checkpoints and resumes like the others: stopped at step 3 and
// resumed to 7, it ends with the weights and metrics of a run that went straight to 7 (teacher forcing 0.5
// draws from a generator the checkpoint carries). A changed option is refused.
TEST(CliSeq2Seq, ResumesBitIdenticallyAndRefusesChangedOptions) {
  const fs::path d = fs::temp_directory_path() / ("loom_test_cli_s2s_resume_" + std::to_string(getpid()));
  fs::remove_all(d);
  const std::string common = "train --model seq2seq --train-samples 300 --test-samples 20 --embed 8 --hidden 8 "
                             "--threads 1 --log-every 1 --checkpoint-every 2 --optimizer sgd --teacher-forcing 0.5 ";
  ASSERT_EQ(loom_cmd(common + "--steps 7 --out " + (d / "straight").string()).status, 0);
  ASSERT_EQ(loom_cmd(common + "--steps 3 --out " + (d / "resumed").string()).status, 0);
  Result r = loom_cmd(common + "--steps 7 --resume --json --out " + (d / "resumed").string());
  ASSERT_EQ(r.status, 0) << r.err;
  EXPECT_EQ(json_lines(r.out).front()["resumed_at_step"], 3);
  auto slurp = [](const fs::path& p) {
    std::ifstream f(p, std::ios::binary);
    return std::string(std::istreambuf_iterator<char>(f), {});
  };
  EXPECT_EQ(slurp(d / "straight" / "model.safetensors"), slurp(d / "resumed" / "model.safetensors"));
  auto without_seconds = [&](const fs::path& p) {  // the last column is wall time
    std::istringstream in(slurp(p));
    std::string out;
    for (std::string line; std::getline(in, line);) out += line.substr(0, line.rfind(',')) + "\n";
    return out;
  };
  EXPECT_EQ(without_seconds(d / "straight" / "metrics.csv"), without_seconds(d / "resumed" / "metrics.csv"));
  Result lr = loom_cmd(common + "--steps 9 --lr 0.05 --resume --out " + (d / "resumed").string());
  EXPECT_EQ(lr.status, 1);
  EXPECT_NE(lr.err.find("made with --lr 0.1, this run has --lr 0.05"), std::string::npos) << lr.err;
  fs::remove_all(d);
}

TEST(CliSeq2Seq, UsageErrors) {
  Result r = loom_cmd("train --model seq2seq --data fashion-mnist --steps 1");
  EXPECT_EQ(r.status, 2) << r.err;
  EXPECT_NE(r.err.find("--data"), std::string::npos) << r.err;
  r = loom_cmd("train --model seq2seq --attention concat --steps 1");
  EXPECT_EQ(r.status, 2) << r.err;
  r = loom_cmd("train --model seq2seq --test-samples 5000 --steps 1");
  EXPECT_EQ(r.status, 2) << r.err;
  r = loom_cmd("translate \"March 5, 1999\"");
  EXPECT_EQ(r.status, 2) << r.err;
  r = loom_cmd("translate --checkpoint /nonexistent/run \"March 5, 1999\"");
  EXPECT_EQ(r.status, 1) << r.err;
}

}  // namespace
