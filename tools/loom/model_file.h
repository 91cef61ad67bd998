// Saved models for the eval and predict commands: a run folder, its model.safetensors, a training checkpoint,
// or a PyTorch state dict saved as safetensors (then --model names the architecture).
//   LoadedModel m = load_model("runs/cnn-fmnist", "");     // m.model, m.name == "cnn", m.classes
//   io::Metadata meta = model_metadata("cnn", spec, classes, data_options);   // what train stores
#pragma once
#include <memory>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "data_spec.h"
#include "loom/io/safetensors.h"
#include "loom/models/models.h"
#include "loom/nn/container.h"

namespace loom::cli {

struct LoadedModel {
  std::shared_ptr<nn::Sequential> model;
  std::string name;  // linreg, mlp, lenet, cnn
  models::ModelSpec shape;
  std::vector<std::string> classes;
  DataOptions data;  // what it was trained on (spec "" when unknown)
  std::string path;  // the file the weights came from
  std::string nonfinite;  // nonfinite_weights() of the file: "" when all are finite
};

// The metadata train writes into model.safetensors and checkpoints so eval/predict can rebuild the model.
io::Metadata model_metadata(const std::string& name, const models::ModelSpec& shape,
                            const std::vector<std::string>& classes, const DataOptions& data);

// `where`: a folder (its model.safetensors, else checkpoint.safetensors) or a file. `model_name` overrides
// (or, for files without loom metadata, supplies) the architecture; the input size is then inferred from the
// weights. Throws loom::Error naming the file on any problem.
LoadedModel load_model(const std::string& where, const std::string& model_name);

std::string loom_version();

// The config.json of a run derived from `checkpoint` (prune, quantize --format int8): the source run's own
// config.json (read through io::read_run_json: checked, decrypted) when `checkpoint` is a folder that has one,
// else {"model": model_name}. The caller adds its own record ("pruning", "quantization").
nlohmann::ordered_json derived_run_config(const std::string& checkpoint, const std::string& model_name);

// "" when every weight is finite, else which tensor holds NaN/inf values and how many (for eval/predict, which
// would otherwise print "loss nan, top5_accuracy 100%" and exit 0).
std::string nonfinite_weights(const nn::StateDict& sd);
// Prints a loud warning to stderr naming `where` and `report` (a nonfinite_weights result).
void warn_nonfinite(const std::string& where, const std::string& report);

}  // namespace loom::cli
