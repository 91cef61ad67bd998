// loom show: an image grid of dataset samples with their labels, or with a model's predictions (red when
// wrong), like the seeds' imshow helper.
#include <filesystem>
#include <iostream>
#include <numeric>

#include "args.h"
#include "commands.h"
#include "data_quality_common.h"
#include "data_spec.h"
#include "loom/autograd/grad_mode.h"
#include "loom/backend/backend.h"
#include "loom/core/generator.h"
#include "loom/explain/pictures.h"
#include "loom/ops/ops.h"
#include "model_file.h"

namespace loom::cli {

namespace {

std::pair<int, int> parse_grid(const std::string& s) {
  const size_t x = s.find('x');
  if (x == std::string::npos) throw UsageError("--grid: expected COLSxROWS such as 8x8, got '" + s + "'");
  const int64_t c = parse_int(s.substr(0, x), "--grid columns"), r = parse_int(s.substr(x + 1), "--grid rows");
  if (c < 1 || r < 1 || c > 64 || r > 64) throw UsageError("--grid: columns and rows must be in 1..64, got '" + s + "'");
  return {int(c), int(r)};
}

}  // namespace

int cmd_show(const Argv& argv) {
  std::string data_spec, checkpoint, grid = "8x8", split = "test", out = "grid.png";
  int64_t start = 0, seed = 0, scale = 2, threads = 0;
  bool shuffle = false, only_wrong = false;
  Args a("loom show", "An image grid of samples with their labels; with --checkpoint, the model's predictions\n"
                      "(black when right, red with the true label when wrong).");
  a.option("--data", &data_spec, "SPEC", "dataset (default: the checkpoint's, else fashion-mnist)");
  a.option("--checkpoint", &checkpoint, "PATH", "a run folder or model file whose predictions to show");
  a.option("--grid", &grid, "CxR", "columns x rows (default 8x8)");
  a.choice("--split", &split, {"test", "train"}, "which split (default test)");
  a.option("--start", &start, "N", "the first sample shown (default 0)", {.min = 0});
  a.flag("--shuffle", &shuffle, "a seeded random choice of samples instead of consecutive ones");
  a.flag("--only-wrong", &only_wrong, "with --checkpoint: only misclassified samples");
  a.option("--seed", &seed, "S", "seed for --shuffle (default 0)", {.min = 0});
  a.option("--scale", &scale, "K", "pixels per image pixel (default 2)", {.min = 1, .max = 16});
  a.option("--threads", &threads, "T", "compute threads (default: all cores)", {.min = 1, .max = 1024});
  a.option("--out", &out, "FILE", "the PNG to write (default grid.png)");
  a.parse(argv);
  const auto [cols, rows] = parse_grid(grid);
  if (only_wrong && checkpoint.empty()) throw UsageError("--only-wrong needs --checkpoint");
  if (threads > 0) set_num_threads(int(threads));

  std::optional<LoadedModel> lm;
  DataOptions dopt{.spec = data_spec.empty() ? "fashion-mnist" : data_spec};
  if (!checkpoint.empty()) {
    lm = load_model(checkpoint, "");
    LOOM_CHECK(!models::is_regression(lm->name), "show draws images; the ", lm->name, " model is a regression");
    if (data_spec.empty() && !lm->data.spec.empty()) dopt = lm->data;
    dopt.norm = lm->data.norm;
    dopt.normalize = !lm->data.norm.empty();
  }
  check_data_options({.spec = dopt.spec});
  if (dopt.spec.starts_with("csv:")) throw UsageError("--data csv: has no images to show");
  if (!lm) dopt.normalize = false;  // shown as stored
  dopt.load_train = split == "train" || (dopt.normalize && dopt.norm.empty());
  LoadedData d = load_data(dopt);
  data::DatasetPtr ds = split == "train" ? d.train : d.test;
  LOOM_CHECK(start < ds->size(), "--start ", start, " is past the ", ds->size(), " ", split, " samples");
  std::vector<int64_t> order(size_t(ds->size() - start));
  std::iota(order.begin(), order.end(), start);
  if (shuffle) {
    Generator g{uint64_t(seed)};
    const std::vector<double> p = randperm(int64_t(order.size()), {.dtype = DType::i64}, &g).tolist();
    for (size_t i = 0; i < order.size(); ++i) order[i] = start + int64_t(p[i]);
  }
  const int64_t want = int64_t(cols) * rows;
  std::vector<Tensor> imgs;
  std::vector<std::string> captions;
  std::vector<train::Rgb> colors;
  int64_t wrong = 0, shown = 0;
  auto cls = [&](int64_t i) { return size_t(i) < d.classes.size() ? d.classes[size_t(i)] : std::to_string(i); };
  for (size_t s = 0; s < order.size() && int64_t(imgs.size()) < want; s += 256) {
    std::vector<int64_t> idx(order.begin() + int64_t(s), order.begin() + int64_t(std::min(order.size(), s + 256)));
    if (!lm && !only_wrong) idx.resize(size_t(std::min<int64_t>(int64_t(idx.size()), want - int64_t(imgs.size()))));
    const data::Batch b = ds->get_batch(idx);
    std::vector<double> pred;
    if (lm) {
      NoGradGuard g;
      lm->model->eval();
      pred = (*lm->model)(b.data).argmax(1).tolist();
    }
    const std::vector<double> y = b.target.tolist();
    for (size_t i = 0; i < idx.size() && int64_t(imgs.size()) < want; ++i) {
      const int64_t truth = int64_t(y[i]);
      const bool is_wrong = lm && int64_t(pred[i]) != truth;
      if (only_wrong && !is_wrong) continue;
      imgs.push_back(displayable(b.data[int64_t(i)], d.norm));
      ++shown, wrong += is_wrong;
      if (!lm) {
        captions.push_back(cls(truth)), colors.push_back({0, 0, 0});
      } else if (is_wrong) {
        captions.push_back(cls(int64_t(pred[i])) + " (" + cls(truth) + ")"), colors.push_back({214, 39, 40});
      } else {
        captions.push_back(cls(truth)), colors.push_back({0, 0, 0});
      }
    }
  }
  LOOM_CHECK(!imgs.empty(), "no samples to show", only_wrong ? " (the model got every sample right)" : "");
  train::write_png(out, explain::image_grid(stack(imgs, 0), captions, colors, cols, rows, int(scale)));
  std::cout << "wrote " << out << ": " << shown << " " << split << " samples of " << dopt.spec;
  if (lm) std::cout << " with " << lm->name << "'s predictions, " << wrong << " wrong (red, true label in brackets)";
  std::cout << "\n";
  return 0;
}

}  // namespace loom::cli
