#include "model_file.h"

#include <filesystem>
#include <iostream>

#include <nlohmann/json.hpp>

#include "loom/io/run_file.h"
#include "loom/runtime/classifier_run.h"

#ifndef LOOM_VERSION
#define LOOM_VERSION "unknown"
#endif

namespace loom::cli {

std::string loom_version() { return LOOM_VERSION; }

std::string nonfinite_weights(const nn::StateDict& sd) { return runtime::nonfinite_weights(sd); }

void warn_nonfinite(const std::string& where, const std::string& report) {
  std::cerr << "loom: WARNING: " << where << " holds " << report
            << ": the model is broken (training diverged?); its results below are meaningless\n";
}

io::Metadata model_metadata(const std::string& name, const models::ModelSpec& shape,
                            const std::vector<std::string>& classes, const DataOptions& data) {
  nlohmann::json in = models::is_regression(name) ? nlohmann::json::array({shape.features})
                                                  : nlohmann::json::array({shape.channels, shape.height, shape.width});
  io::Metadata m = {{"loom.model", name},
          {"loom.input", in.dump()},
          {"loom.num_classes", std::to_string(shape.num_classes)},
          {"loom.classes", nlohmann::json(classes).dump()},
          {"loom.data", data.spec},
          {"loom.target", data.target},
          {"loom.seed", std::to_string(data.seed)},
          {"loom.image_size", std::to_string(data.image_size)},
          {"loom.version", loom_version()}};
  if (!shape.widths.empty()) m["loom.widths"] = nlohmann::json(shape.widths).dump();  // a structurally pruned model
  if (!data.norm.empty()) m["loom.normalize"] = nlohmann::json{{"mean", data.norm.mean}, {"std", data.norm.std}}.dump();
  return m;
}

LoadedModel load_model(const std::string& where, const std::string& model_name) {
  // The library does the work (loom/runtime/classifier_run.cpp: checked metadata, other families refused,
  // weights read through loom::trust, non-finite weights counted).
  runtime::ClassifierRun r = runtime::load_classifier(where, model_name);
  LoadedModel lm;
  lm.model = r.model, lm.name = r.name, lm.shape = r.shape, lm.classes = r.classes, lm.path = r.path;
  lm.data.spec = r.data_spec, lm.data.target = r.target, lm.data.seed = r.seed, lm.data.image_size = r.image_size;
  lm.data.normalize = !r.mean.empty();
  lm.data.norm = {r.mean, r.std};
  lm.nonfinite = r.nonfinite;
  return lm;
}

nlohmann::ordered_json derived_run_config(const std::string& checkpoint, const std::string& model_name) {
  namespace fs = std::filesystem;
  const fs::path src = fs::path(checkpoint) / "config.json";
  if (fs::is_directory(checkpoint) && fs::exists(src))
    return nlohmann::ordered_json::parse(io::read_run_json(src.string()).dump());
  return {{"model", model_name}};
}

}  // namespace loom::cli
