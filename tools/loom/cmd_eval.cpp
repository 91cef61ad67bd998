// loom eval: a saved model on a dataset's test split (by default the data it was trained on).
#include <cmath>
#include <filesystem>
#include <iostream>

#include <nlohmann/json.hpp>

#include "args.h"
#include "commands.h"
#include "data_spec.h"
#include "loom/backend/backend.h"
#include "loom/data/dataloader.h"
#include "loom/nn/loss.h"
#include "loom/io/gguf.h"
#include "loom/train/confusion_png.h"
#include "loom/train/trainer.h"
#include "lm_common.h"
#include "model_file.h"

namespace loom::cli {

namespace {

// Exit status 1 (after the numbers, and a warning on stderr) when the weights or the loss are not finite: a
// script must not take "loss nan" for a result.
int finish(const LoadedModel& lm, const train::Logs& r) {
  bool finite = true;
  for (const auto& [k, v] : r) finite = finite && std::isfinite(v);
  if (!lm.nonfinite.empty()) warn_nonfinite(lm.path, lm.nonfinite);
  if (lm.nonfinite.empty() && !finite)
    std::cerr << "loom: WARNING: the evaluation of " << lm.path << " gave non-finite numbers (NaN/inf): the model's "
              << "outputs overflow on this data; the results above are meaningless\n";
  return lm.nonfinite.empty() && finite ? 0 : 1;
}

}  // namespace

int cmd_eval(const Argv& argv) {
  // A language-model folder has its own options (cmd_eval_lm.cpp).
  for (size_t i = 0; i + 1 < argv.size(); ++i)
    if (argv[i] == "--checkpoint" && (is_lm_folder(argv[i + 1]) || io::is_gguf_file(argv[i + 1]))) return cmd_eval_lm(argv);
  for (const auto& s : argv)
    if (s.starts_with("--checkpoint=") && (is_lm_folder(s.substr(13)) || io::is_gguf_file(s.substr(13))))
      return cmd_eval_lm(argv);
  std::string checkpoint, model_name, data_spec, target;
  int64_t batch = 256, threads = 0, test_samples = 0, workers = 0;
  bool json_out = false;
  Args a("loom eval", "Evaluate a saved model (run folder, model.safetensors or checkpoint) on a test split.");
  a.option("--checkpoint", &checkpoint, "PATH", "run folder or .safetensors file (required)");
  a.option("--data", &data_spec, "SPEC", "dataset (default: the one the model was trained on)");
  a.option("--target", &target, "COL", "csv: the column to predict");
  a.choice("--model", &model_name, models::model_names(), "architecture, for weights saved without loom metadata");
  a.option("--batch-size", &batch, "B", "samples per forward pass (default 256)", {.min = 1, .max = 1 << 20});
  a.option("--threads", &threads, "T", "compute threads (default: all cores)", {.min = 1, .max = 1024});
  a.option("--workers", &workers, "N", "data loading threads (default 0)", {.min = 0, .max = 64});
  a.option("--test-samples", &test_samples, "N", "use only the first N test samples", {.min = 1});
  a.flag("--json", &json_out, "print one JSON object");
  a.parse(argv);
  if (checkpoint.empty()) throw UsageError("--checkpoint is required");
  if (!data_spec.empty()) check_data_options({.spec = data_spec, .target = target});
  if (threads > 0) set_num_threads(int(threads));

  LoadedModel lm = load_model(checkpoint, model_name);
  DataOptions d = lm.data;
  if (!data_spec.empty()) d.spec = data_spec, d.target = target;
  LOOM_CHECK(!d.spec.empty(), lm.path, ": the file does not record its training data; pass --data");
  d.load_train = false;
  d.test_limit = test_samples;
  // The model's normalisation is applied after the shape checks below, so data of the wrong shape is reported
  // as such rather than as a normalisation with the wrong number of channels.
  const Normalization norm = d.norm;
  d.norm = {};
  d.normalize = false;
  LoadedData data = load_data(d);
  LOOM_CHECK(data.regression == models::is_regression(lm.name), "the ", lm.name, " model does not fit ", d.spec, " (",
             data.regression ? "regression" : "classification", " data)");
  LOOM_CHECK(data.shape.channels == lm.shape.channels && data.shape.height == lm.shape.height &&
                 data.shape.width == lm.shape.width && data.shape.features == lm.shape.features,
             "the model expects inputs of ", models::input_shape(lm.name, lm.shape), ", ", d.spec, " gives ",
             models::input_shape(lm.name, data.shape));

  if (!data.regression) data.test = normalized(data.test, norm);
  LOOM_CHECK(data.regression || data.shape.num_classes <= lm.shape.num_classes, "the model in ", lm.path, " has ",
             lm.shape.num_classes, " classes, the data ", d.spec, " has ", data.shape.num_classes,
             ": evaluate it on data with the classes it was trained on");

  data::DataLoader loader(data.test, {.batch_size = batch, .num_workers = int(workers)});
  train::EvalOptions eo;
  std::unique_ptr<train::ConfusionMatrix> cm;
  if (data.regression) {
    eo.loss = [](const Tensor& o, const Tensor& t) { return mse_loss(o, t); };
    eo.metrics = {"mae", "r2"};
  } else {
    eo.metrics = {"accuracy"};
    if (lm.shape.num_classes > 5) eo.metrics.push_back("top5_accuracy");
    cm = std::make_unique<train::ConfusionMatrix>(lm.shape.num_classes);
    eo.confusion = cm.get();
  }
  const train::Logs r = train::evaluate(*lm.model, loader, eo);

  // The run's pictures, when the model sits in a run folder (loom train draws them).
  const std::filesystem::path run = std::filesystem::path(lm.path).parent_path();
  std::string pictures;
  for (const char* f : {"curves.png", train::kConfusionFile})
    if (std::filesystem::exists(run / f)) pictures += (pictures.empty() ? "" : ", ") + (run / f).string();
  if (json_out) {
    nlohmann::ordered_json j;
    j["event"] = "eval";
    j["checkpoint"] = lm.path;
    j["data"] = d.spec;
    j["samples"] = data.test->size();
    for (const auto& [k, v] : r) j[k] = v;
    if (!lm.nonfinite.empty()) j["warning"] = "non-finite weights: " + lm.nonfinite;
    if (!pictures.empty()) j["pictures"] = pictures;
    std::cout << j.dump() << "\n";
    return finish(lm, r);
  }
  std::cout << lm.name << " from " << lm.path << " on " << d.spec << " (" << data.test->size() << " test samples)\n";
  for (const auto& [k, v] : r) {
    if (k.find("accuracy") != std::string::npos)
      std::printf("  %-15s %.2f%%\n", k.c_str(), 100.0 * v);
    else
      std::printf("  %-15s %.6g\n", k.c_str(), v);
  }
  std::fflush(stdout);
  if (cm) std::cout << "\nconfusion matrix (rows: true class, columns: predicted)\n" << cm->to_string(lm.classes);
  if (!pictures.empty()) std::cout << "\npictures: " << pictures << "\n";
  return finish(lm, r);
}

}  // namespace loom::cli
