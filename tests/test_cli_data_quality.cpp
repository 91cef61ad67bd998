// The data-quality and explanation commands as users run them: show, the confusion matrix in a run folder
// and eval's pointer to it, explain (all four image methods, and LM tokens/attention), audit-labels and
// autolabel on small Fashion-MNIST subsets, and their usage errors.
#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>
#include <sstream>

#include <nlohmann/json.hpp>

#include "loom/data/image_folder.h"
#include "loom/data/mnist.h"
#include "loom/io/npy.h"
#include "loom/loom.h"
#include "support/loom_cli.h"
#include "support/run_command.h"
#include "support/scratch.h"

using namespace loom;
namespace fs = std::filesystem;
using json = nlohmann::json;

using loom::test::slurp;
using loom::test::loom_cmd;

namespace {

int64_t lines(const fs::path& p) {
  std::ifstream f(p);
  std::string l;
  int64_t n = 0;
  while (std::getline(f, l)) ++n;
  return n;
}

// One small CNN run shared by the tests of this file (trained once).
const fs::path& run_dir() {
  static const fs::path dir = [] {
    fs::path d = loom::test::scratch("run");
    auto r = loom_cmd("train --model cnn --train-samples 1024 --test-samples 256 --steps 40 --threads 2 "
                      "--progress none --out " + d.string());
    EXPECT_EQ(r.status, 0) << r.err;
    return d;
  }();
  return dir;
}

}  // namespace

TEST(CliDataQuality, TrainWritesConfusionPngAndEvalPointsAtIt) {
  const fs::path& run = run_dir();
  ASSERT_TRUE(fs::exists(run / "confusion.png"));
  const Tensor img = data::read_image((run / "confusion.png").string(), 3);
  EXPECT_GT(img.size(0), 10 * 34);  // 10 classes of >= 34-pixel cells
  EXPECT_GT(img.size(1), 10 * 34);
  auto r = loom_cmd("eval --checkpoint " + run.string() + " --test-samples 64");
  ASSERT_EQ(r.status, 0) << r.err;
  EXPECT_NE(r.out.find("pictures: " + (run / "curves.png").string() + ", " + (run / "confusion.png").string()),
            std::string::npos) << r.out;
}

TEST(CliDataQuality, ShowDrawsAGridWithLabelsOrPredictions) {
  const fs::path out = loom::test::scratch("grid.png");
  auto r = loom_cmd("show --grid 4x2 --scale 2 --out " + out.string());
  ASSERT_EQ(r.status, 0) << r.err;
  const Tensor img = data::read_image(out.string(), 3);
  EXPECT_EQ(img.size(0), 2 * (56 + 24));  // rows x (28 * 2 + two caption lines)
  EXPECT_EQ(img.size(1) % 4, 0);
  // With a model: the wrong ones in red (a 40-step model gets some of 64 wrong).
  const fs::path out2 = loom::test::scratch("grid2.png");
  r = loom_cmd("show --checkpoint " + run_dir().string() + " --only-wrong --grid 4x4 --out " + out2.string());
  ASSERT_EQ(r.status, 0) << r.err;
  EXPECT_NE(r.out.find("wrong (red"), std::string::npos) << r.out;
  const Tensor g = data::read_image(out2.string(), 3);
  const std::vector<double> v = g.reshape({-1, 3}).to(DType::f64).tolist();
  int64_t red = 0;
  for (size_t i = 0; i + 2 < v.size(); i += 3) red += v[i] == 214 && v[i + 1] == 39 && v[i + 2] == 40;
  EXPECT_GT(red, 10);
}

TEST(CliDataQuality, ExplainWritesPanelsAndNumbersForEveryMethod) {
  const fs::path out = loom::test::scratch("explain");
  for (std::string m : {"saliency", "integrated-gradients", "gradcam", "occlusion"}) {
    auto r = loom_cmd("explain --checkpoint " + run_dir().string() + " --method " + m +
                      " --steps 64 --scale 4 --json test:0 --out " + out.string());
    ASSERT_EQ(r.status, 0) << m << "\n" << r.err;
    auto ev = loom::test::json_lines(r.out);
    ASSERT_EQ(ev.size(), 1u) << r.out;
    EXPECT_EQ(ev[0]["true"], "Ankle boot");
    const Tensor png = data::read_image((out / ("test0_" + m + ".png")).string(), 3);
    EXPECT_EQ(png.size(1), 3 * 28 * 4 + 16);  // input | map | overlay, 8-pixel gaps
    const Tensor a = io::read_npy((out / ("test0_" + m + ".npy")).string());
    EXPECT_EQ(a.numel(), 28 * 28) << m;
    if (m == "integrated-gradients") {
      EXPECT_LT(ev[0]["relative_error"].get<double>(), 0.01);
    }
  }
}

TEST(CliDataQuality, ExplainLanguageModelTokensAndAttention) {
  const fs::path corpus = loom::test::scratch("corpus.txt"), run = loom::test::scratch("gpt");
  std::string text;
  for (int i = 0; i < 40; ++i) text += "in the beginning was the word. ";
  loom::test::write_file(corpus, text);
  auto r = loom_cmd("train --model gpt --data text:" + corpus.string() +
                    " --tokenizer char --layers 2 --heads 2 --width 16 --context 16 --batch-size 4 --steps 5"
                    " --threads 2 --out " + run.string() + " --json");
  ASSERT_EQ(r.status, 0) << r.err;
  const fs::path out = loom::test::scratch("lmx");
  r = loom_cmd("explain --checkpoint " + run.string() + " --prompt 'the wor' --no-color --out " + out.string());
  ASSERT_EQ(r.status, 0) << r.err;
  const std::string html = slurp(out / "tokens.html");
  EXPECT_EQ(std::count(html.begin(), html.end(), '\n') > 3, true);
  size_t spans = 0;
  for (size_t at = html.find("<span"); at != std::string::npos; at = html.find("<span", at + 1)) ++spans;
  EXPECT_EQ(spans, 7u);  // one per character token of "the wor"
  r = loom_cmd("explain --checkpoint " + run.string() + " --method attention --cell 32 --prompt 'the wor' --out " + out.string());
  ASSERT_EQ(r.status, 0) << r.err;
  const Tensor png = data::read_image((out / "attention.png").string(), 3);
  EXPECT_EQ(png.size(0), 14 + 2 * 36);  // 2 layers
  EXPECT_EQ(png.size(1), 14 + 2 * 36);  // 2 heads
}

TEST(CliDataQuality, AuditLabelsWritesRankedIssuesAndSummary) {
  const fs::path out = loom::test::scratch("issues.csv");
  const fs::path probs = loom::test::scratch("probs.npy");
  auto r = loom_cmd("audit-labels --model mlp --train-samples 400 --folds 2 --epochs 1 --threads 2 --out " + out.string() +
                    " --save-probs " + probs.string());
  ASSERT_EQ(r.status, 0) << r.err;
  // The saved probabilities give the same issues without training (and other filters choose from them).
  const fs::path again = loom::test::scratch("again.csv");
  auto r2 = loom_cmd("audit-labels --train-samples 400 --probs " + probs.string() + " --out " + again.string());
  ASSERT_EQ(r2.status, 0) << r2.err;
  EXPECT_EQ(slurp(again), slurp(out));
  auto r3 = loom_cmd("audit-labels --train-samples 400 --filter prune_by_noise_rate --probs " + probs.string() +
                     "," + probs.string() + " --out " + again.string());
  ASSERT_EQ(r3.status, 0) << r3.err;
  EXPECT_NE(r.out.find("estimated noise matrix"), std::string::npos) << r.out;
  const std::string csv = slurp(out);
  EXPECT_EQ(csv.substr(0, csv.find('\n')), "index,given_label,suggested_label,score,given_name,suggested_name");
  EXPECT_TRUE(fs::exists(loom::test::scratch("issues.summary.txt")));
  // Scores ascend down the file.
  std::istringstream in(csv);
  std::string line;
  std::getline(in, line);
  double prev = -1;
  while (std::getline(in, line)) {
    std::vector<std::string> f;
    std::stringstream ls(line);
    for (std::string x; std::getline(ls, x, ',');) f.push_back(x);
    ASSERT_GE(f.size(), 4u);
    const double s = std::stod(f[3]);
    EXPECT_GE(s, prev);
    prev = s;
  }
}

TEST(CliDataQuality, AutolabelWritesIdxFolderLabelsAndReport) {
  const fs::path out = loom::test::scratch("auto");
  auto r = loom_cmd("autolabel --method rounds --model mlp --train-samples 400 --labelled 100 --rounds 1 --min-steps 30 --threshold 0.6 --test-samples 500"
                    " --threads 2 --out " + out.string());
  ASSERT_EQ(r.status, 0) << r.err;
  EXPECT_NE(r.out.find("round 1:"), std::string::npos) << r.out;
  EXPECT_EQ(lines(out / "labels.csv"), 401);
  const Tensor labels = data::read_idx((out / "train-labels-idx1-ubyte").string());
  EXPECT_EQ(labels.shape(), (Shape{400}));
  auto ds = data::load_mnist(out.string(), true);  // the folder is a dataset the loaders read
  EXPECT_EQ(ds->size(), 400);
  const json rep = json::parse(slurp(out / "report.json"));
  EXPECT_EQ(rep["rounds"].size(), 2u);
  EXPECT_EQ(rep["labelled"], 100);
}

TEST(CliDataQuality, AutolabelFixMatchReportsBaselineAndWindows) {
  const fs::path out = loom::test::scratch("auto_fixmatch");
  auto r = loom_cmd("autolabel --model mlp --train-samples 300 --labelled 60 --steps 20 --report-every 10"
                    " --batch-size 16 --mu 2 --threshold 0.6 --test-samples 300 --threads 2 --out " + out.string());
  ASSERT_EQ(r.status, 0) << r.err;
  EXPECT_NE(r.out.find("baseline step 20"), std::string::npos) << r.out;
  EXPECT_NE(r.out.find("fixmatch step 20"), std::string::npos) << r.out;
  EXPECT_EQ(lines(out / "labels.csv"), 301);
  EXPECT_EQ(data::read_idx((out / "train-labels-idx1-ubyte").string()).shape(), (Shape{300}));
  const json rep = json::parse(slurp(out / "report.json"));
  EXPECT_EQ(rep["method"], "fixmatch");  // the default method
  ASSERT_EQ(rep["rounds"].size(), 4u);  // baseline at steps 10 and 20, then FixMatch at 10 and 20
  EXPECT_EQ(rep["rounds"][0]["run"], "baseline");
  EXPECT_EQ(rep["rounds"][3]["run"], "fixmatch");
  EXPECT_EQ(rep["rounds"][3]["unlabelled_seen"], 10 * 32);
  EXPECT_TRUE(rep["rounds"][3].contains("coverage"));
  EXPECT_EQ(rep["test_accuracy_labelled_only"], rep["rounds"][1]["test_accuracy"]);
  EXPECT_EQ(rep["test_accuracy_final"], rep["rounds"][3]["test_accuracy"]);
  EXPECT_EQ(rep["weak_shift"], 2);  // fixmatch's default weak augmentation: shift 2 and flip
  EXPECT_EQ(rep["weak_hflip"], true);
}

TEST(CliDataQuality, UsageErrors) {
  auto expect2 = [](const std::string& args, const std::string& needle) {
    auto r = loom_cmd(args);
    EXPECT_EQ(r.status, 2) << args << "\n" << r.err;
    EXPECT_NE(r.err.find(needle), std::string::npos) << args << "\n" << r.err;
  };
  expect2("autolabel --labelled 10", "--out");
  expect2("autolabel --out x --labelled 10 --labelled-fraction 0.1", "one of --labelled");
  expect2("autolabel --out x --labelled 10 --method magic", "--method");
  expect2("autolabel --out x --labelled 10 --method fixmatch --rounds 2", "--rounds is an option of --method rounds");
  expect2("autolabel --out x --labelled 10 --method rounds --steps 100", "--method fixmatch");
  expect2("autolabel --out x --labelled 10 --rounds 2", "--rounds is an option of --method rounds");  // fixmatch: default
  expect2("autolabel --out x --labelled 10 --method fixmatch --mu 0", "--mu");
  expect2("autolabel --out x --labelled 10 --method fixmatch --ema 1", "--ema");
  expect2("autolabel --out x --labelled 10 --method fixmatch --hflip --no-hflip", "not both");
  expect2("explain test:0", "--checkpoint");
  expect2("show --grid 0x3", "--grid");
  expect2("audit-labels --data csv:x.csv", "csv");
  expect2("explain --checkpoint x --method magic test:0", "--method");
  auto r = loom_cmd("explain --checkpoint /nonexistent/run test:0");
  EXPECT_EQ(r.status, 1);
  EXPECT_NE(r.err.find("/nonexistent/run"), std::string::npos) << r.err;
}
