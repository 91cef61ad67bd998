// The language-model commands as users run them: tokenize/detokenize round trips, loom train --model lstm-lm
// on a small text file (run folder, JSON summary, loss falls, --resume bit-identical), generate (seeded,
// repeatable), eval's LM branch, and usage errors (exit 2).
#include <gtest/gtest.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cmath>
#include <cstdio>
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

using Result = loom::test::CommandResult;
using loom::test::json_lines;

void write(const fs::path& p, const std::string& s) { std::ofstream(p, std::ios::binary) << s; }

// metrics.csv's step and loss columns (tokens_per_s differs from run to run, and a run stopped at step 10
// validated there).
std::string metrics_losses(const fs::path& run) {
  std::istringstream in(slurp(run / "metrics.csv"));
  std::string all;
  for (std::string line; std::getline(in, line);) all += line.substr(0, line.find(',', line.find(',') + 1)) + "\n";
  return all;
}

class CliLM : public ::testing::Test {
 protected:
  void SetUp() override {
    dir = fs::temp_directory_path() / ("loom_test_cli_lm_" + std::to_string(getpid()));
    fs::remove_all(dir);
    fs::create_directories(dir);
    std::string text;
    const char* verses[] = {"In the beginning God created the heaven and the earth.\n",
                            "And the earth was without form, and void.\n",
                            "And God said, Let there be light: and there was light.\n",
                            "And God saw the light, that it was good.\n"};
    for (int i = 0; i < 40; ++i) text += verses[(i * 7) % 4];
    corpus = dir / "corpus.txt";
    write(corpus, text);
  }
  void TearDown() override { fs::remove_all(dir); }

  std::string train_args(const fs::path& out, int steps) const {
    return "train --model lstm-lm --data text:" + corpus.string() +
           " --tokenizer char --embedding 8 --layers 1 --hidden 16 --context 16 --batch-size 4 --lr 1e-2"
           " --clip-grad-norm 1 --warmup 2 --grad-accum 2 --threads 2 --seed 3 --log-every 2"
           " --steps " + std::to_string(steps) + " --out " + out.string() + " --json";
  }

  fs::path dir, corpus;
};

}  // namespace

TEST_F(CliLM, TokenizeDetokenizeRoundTrips) {
  const fs::path t = dir / "t.txt";
  write(t, "Hello world\r\n\nsecond line\n");
  Result r = loom_cmd("tokenize --tokenizer gpt2 --per-line " + t.string());
  ASSERT_EQ(r.status, 0) << r.err;
  std::istringstream lines(r.out);
  std::string first, empty, third, extra;
  std::getline(lines, first), std::getline(lines, empty), std::getline(lines, third);
  EXPECT_EQ(first.rfind("15496 995 ", 0), 0u) << first;  // "Hello world" as in the BPE tests, then "\r"
  EXPECT_EQ(empty, "");
  EXPECT_FALSE(third.empty());
  EXPECT_FALSE(std::getline(lines, extra));  // the final \n ends the last line
  write(dir / "ids.txt", r.out);
  Result back = loom_cmd("detokenize --tokenizer gpt2 --per-line " + (dir / "ids.txt").string());
  ASSERT_EQ(back.status, 0) << back.err;
  EXPECT_EQ(back.out, "Hello world\r\n\nsecond line\n");

  // Whole-file mode round-trips exactly, for gpt2 and for a char vocabulary saved by tokenize.
  r = loom_cmd("tokenize --tokenizer gpt2 " + corpus.string());
  write(dir / "ids2.txt", r.out);
  EXPECT_EQ(loom_cmd("detokenize --tokenizer gpt2 " + (dir / "ids2.txt").string()).out, slurp(corpus));
  r = loom_cmd("tokenize --tokenizer char --save-tokenizer " + (dir / "vocab.json").string() + " " + corpus.string());
  ASSERT_EQ(r.status, 0) << r.err;
  write(dir / "ids3.txt", r.out);
  EXPECT_EQ(loom_cmd("detokenize --tokenizer " + (dir / "vocab.json").string() + " " + (dir / "ids3.txt").string()).out,
            slurp(corpus));
  EXPECT_EQ(loom_cmd("detokenize --tokenizer char:" + corpus.string() + " " + (dir / "ids3.txt").string()).out,
            slurp(corpus));
  // Ids outside the vocabulary are a runtime error naming the line.
  write(dir / "bad.txt", "1 2 99999999\n");
  Result bad = loom_cmd("detokenize --tokenizer gpt2 " + (dir / "bad.txt").string());
  EXPECT_EQ(bad.status, 1);
  EXPECT_NE(bad.err.find("outside the vocabulary"), std::string::npos) << bad.err;
}

TEST_F(CliLM, TrainWritesARunFolderAndResumesBitIdentically) {
  const fs::path a = dir / "a", b = dir / "b";
  Result r = loom_cmd(train_args(a, 20));
  ASSERT_EQ(r.status, 0) << r.err;
  auto ev = json_lines(r.out);
  ASSERT_GE(ev.size(), 3u);
  const json done = ev.back();
  EXPECT_EQ(done["event"], "done");
  for (const char* k : {"train_tokens_per_s", "val_loss", "peak_rss_mb", "loss"}) EXPECT_TRUE(done.contains(k)) << k;
  EXPECT_GT(done["train_tokens_per_s"].get<double>(), 0);
  EXPECT_TRUE(std::isfinite(done["val_loss"].get<double>()));
  EXPECT_EQ(done["steps"], 20);
  std::vector<double> losses;
  for (const auto& e : ev)
    if (e["event"] == "step") losses.push_back(e["loss"]);
  ASSERT_GE(losses.size(), 5u);
  EXPECT_LT(losses.back(), losses.front());
  for (const char* f : {"model.safetensors", "config.json", "tokenizer.json", "metrics.csv", "checkpoint.safetensors"})
    EXPECT_TRUE(fs::exists(a / f)) << f;
  EXPECT_EQ(slurp(a / "metrics.csv").rfind("step,loss,val_loss,lr", 0), 0u);

  ASSERT_EQ(loom_cmd(train_args(b, 10)).status, 0);
  Result resumed = loom_cmd(train_args(b, 20) + " --resume");
  ASSERT_EQ(resumed.status, 0) << resumed.err;
  EXPECT_EQ(json_lines(resumed.out).front()["resumed_at_step"], 10);
  const json done_b = json_lines(resumed.out).back();
  EXPECT_EQ(done_b["loss"], done["loss"]);
  EXPECT_EQ(done_b["val_loss"], done["val_loss"]);
  nn::StateDict wa = train::read_weights((a / "model.safetensors").string()),
                wb = train::read_weights((b / "model.safetensors").string());
  ASSERT_EQ(wa.keys(), wb.keys());
  for (const auto& [k, t] : wa) EXPECT_EQ(t.tolist(), wb.at(k).tolist()) << k;
  EXPECT_EQ(metrics_losses(a), metrics_losses(b)) << "the resumed run continues the same history";

  // A resume with another recipe is refused.
  Result changed = loom_cmd("train --model lstm-lm --data text:" + corpus.string() +
                            " --embedding 8 --layers 1 --hidden 16 --context 16 --batch-size 8 --steps 30 --out " +
                            b.string() + " --resume --json");
  EXPECT_EQ(changed.status, 1);
  EXPECT_NE(changed.err.find("cannot resume"), std::string::npos) << changed.err;
  // Only --lr changed: refused, naming it with both values (the optimizer state would keep the old one).
  std::string lr_args = train_args(b, 30) + " --resume";
  lr_args.replace(lr_args.find("--lr 1e-2"), 9, "--lr 5e-3");
  Result lr = loom_cmd(lr_args);
  EXPECT_EQ(lr.status, 1);
  EXPECT_NE(lr.err.find("made with --lr 0.01, this run has --lr 0.005"), std::string::npos) << lr.err;
  // A checkpoint of the language-model loop from before the one Trainer (its state in loom.lm_trainer) is refused
  // with the reason and the fix, not misread.
  train::Checkpoint old = train::load_checkpoint((b / "checkpoint.safetensors").string());
  ASSERT_EQ(old.metadata.erase("loom.trainer"), 1u);
  old.metadata["loom.lm_trainer"] = "{\"step\": 20}";
  train::save_checkpoint((b / "checkpoint.safetensors").string(), old);
  // (The run folder's manifest no longer matches the edited file: skip that check to reach this one.)
  Result older = loom::test::run_command("LOOM_SKIP_VERIFY=1 " + std::string(LOOM_BIN) + " " + train_args(b, 30) + " --resume");
  EXPECT_EQ(older.status, 2);
  EXPECT_NE(older.err.find("made by an older loom"), std::string::npos) << older.err;
  EXPECT_NE(older.err.find("start a new run with another --out"), std::string::npos) << older.err;

  // generate: the same seed gives the same text; streaming prints the prompt first.
  const std::string gen = "generate --checkpoint " + a.string() + " --prompt 'And God' --max-tokens 30 --top-k 5 --seed 7";
  Result g1 = loom_cmd(gen), g2 = loom_cmd(gen);
  ASSERT_EQ(g1.status, 0) << g1.err;
  EXPECT_EQ(g1.out, g2.out);
  EXPECT_EQ(g1.out.rfind("And God", 0), 0u);
  EXPECT_GT(g1.out.size(), std::string("And God").size());
  Result gj = loom_cmd("generate --checkpoint " + a.string() +
                       " --prompt 'And' --prompt 'In the' --max-tokens 40 --greedy --stop e --json");
  ASSERT_EQ(gj.status, 0) << gj.err;
  auto outs = json_lines(gj.out);
  ASSERT_EQ(outs.size(), 2u);
  for (const auto& o : outs) EXPECT_EQ(o["text"].get<std::string>().find('e'), std::string::npos) << o.dump();

  // eval on the validation split reproduces the training run's val_loss.
  Result ev_r = loom_cmd("eval --checkpoint " + a.string() + " --val-split --json");
  ASSERT_EQ(ev_r.status, 0) << ev_r.err;
  const json e = json::parse(ev_r.out);
  EXPECT_NEAR(e["loss"].get<double>(), done["val_loss"].get<double>(), 1e-5);
  Result ev_all = loom_cmd("eval --checkpoint " + a.string() + " --data text:" + corpus.string() + " --context 16 --json");
  ASSERT_EQ(ev_all.status, 0) << ev_all.err;
  EXPECT_TRUE(std::isfinite(json::parse(ev_all.out)["loss"].get<double>()));
}

TEST_F(CliLM, UsageErrorsExitTwo) {
  auto expect_usage = [](const std::string& args, const std::string& needle) {
    Result r = loom_cmd(args);
    EXPECT_EQ(r.status, 2) << "loom " << args << "\n" << r.err;
    EXPECT_NE(r.err.find(needle), std::string::npos) << "loom " << args << ": stderr lacks '" << needle << "':\n" << r.err;
  };
  const std::string base = "train --model lstm-lm --data text:" + corpus.string();
  expect_usage("train --model lstm-lm --data bogus", "--data must be kjv or text:FILE");
  expect_usage("train --model lstm-lm --data text:/nonexistent/x.txt", "no such file");
  expect_usage(base + " --tokenizer wordpiece", "--tokenizer must be");
  expect_usage(base + " --steps 5 --warmup 5", "--warmup must be less than --steps");
  expect_usage(base + " --precision f8", "--precision: invalid choice");
  expect_usage(base + " --hidden 0", "--hidden");
  expect_usage(base + " --init-std 0.05", "apply to --model gpt only");
  expect_usage("generate --prompt hi", "--checkpoint is required");
  expect_usage("generate --checkpoint " + dir.string(), "--prompt");
  expect_usage("generate --checkpoint " + dir.string() + " --prompt x", "not a language-model folder");
  expect_usage("generate --checkpoint x --prompt y --top-p 0", "--top-p");
  expect_usage("tokenize " + corpus.string(), "--tokenizer is required");
  expect_usage("detokenize --tokenizer char " + corpus.string(), "char:CORPUS");
}
