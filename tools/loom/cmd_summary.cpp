// loom summary: a Keras-like table of a model's layers for a dataset's input geometry.
#include <iostream>

#include "args.h"
#include "loom/core/limits.h"
#include "commands.h"
#include "data_spec.h"
#include "loom/data/csv.h"
#include "loom/data/image_folder.h"

namespace loom::cli {

namespace {

// The input geometry of a dataset without loading it (only a CSV's header and an image folder's listing).
models::ModelSpec data_shape(const DataOptions& o) {
  const auto [kind, path] = split_spec(o.spec);
  if (kind == "fashion-mnist" || kind == "mnist") return {.channels = 1, .height = 28, .width = 28, .num_classes = 10};
  if (kind == "cifar10") return {.channels = 3, .height = 32, .width = 32, .num_classes = 10};
  if (kind == "imagefolder") return load_data(o).shape;
  const data::CsvTable t = data::read_csv(path, {.target = o.target});
  return {.features = int64_t(t.feature_names.size()), .num_classes = 1};
}

}  // namespace

int cmd_summary(const Argv& argv) {
  std::string model, data_spec, target;
  int64_t image_size = 32, features = 0;
  Args a("loom summary", "Print a model's layers, output shapes and parameter counts.");
  a.choice("--model", &model, models::model_names(), "the architecture (required)");
  a.option("--data", &data_spec, "SPEC", "input geometry from a dataset (default fashion-mnist; csv:FILE for linreg)");
  a.option("--target", &target, "COL", "csv: the column to predict");
  a.option("--image-size", &image_size, "N", "imagefolder: images are resized to NxN (default 32)",
           {.min = 8, .max = 1024});
  a.option("--features", &features, "N", "linreg: number of input features (instead of --data csv:FILE)", {.min = 1, .max = double(limits::kMaxFeatures)});
  std::string checkpoint;
  a.option("--checkpoint", &checkpoint, "DIR", "instead of --model: each tensor's dtype, shape and size in a run folder");
  a.parse(argv);
  if (!checkpoint.empty()) return summary_checkpoint(checkpoint);
  if (model.empty()) throw UsageError("--model is required (one of linreg, mlp, lenet, cnn)");
  models::ModelSpec shape;
  if (model == "linreg" && data_spec.empty()) {
    if (features == 0) throw UsageError("--model linreg needs --features N or --data csv:FILE --target COL");
    shape = {.features = features, .num_classes = 1};
  } else {
    DataOptions o{.spec = data_spec.empty() ? "fashion-mnist" : data_spec, .target = target, .image_size = image_size};
    check_data_options(o);
    if ((model == "linreg") != o.spec.starts_with("csv:"))
      throw UsageError(model == "linreg" ? "--model linreg takes csv:FILE data" : "csv data is for --model linreg");
    shape = data_shape(o);
  }
  auto m = models::make_model(model, shape);
  std::cout << m->summary(models::input_shape(model, shape, 1));
  return 0;
}

}  // namespace loom::cli
