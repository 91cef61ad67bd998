#include "data_quality_common.h"

#include <filesystem>
#include <fstream>

#include <nlohmann/json.hpp>

#include "args.h"
#include "loom/ops/ops.h"

namespace loom::cli {

RunChoice run_choice(const std::string& dir) {
  const std::string path = (std::filesystem::path(dir) / "config.json").string();
  std::ifstream f(path);
  LOOM_CHECK(f.good(), path, ": cannot read the run's config.json (--checkpoint takes a loom train run folder)");
  nlohmann::json j;
  try {
    j = nlohmann::json::parse(f);
  } catch (const std::exception& e) {
    LOOM_CHECK(false, path, ": not valid JSON (", e.what(), ")");
  }
  LOOM_CHECK(j.contains("model") && j["model"].is_string(), path, ": no \"model\" entry (expected a loom train run)");
  return {j["model"].get<std::string>(), j.value("data", std::string("fashion-mnist"))};
}

dataquality::ModelFactory classifier_factory(const std::string& model, const models::ModelSpec& shape) {
  return [model, shape] { return std::static_pointer_cast<nn::Module>(models::make_model(model, shape)); };
}

void check_classifier(const std::string& model, const std::string& data_spec) {
  if (models::is_regression(model)) throw UsageError("--model " + model + " is a regression; this needs a classifier (mlp, lenet, cnn)");
  if (data_spec.starts_with("csv:")) throw UsageError("--data csv: is regression data; this needs a classification dataset");
}

Tensor displayable(const Tensor& x, const Normalization& n) {
  if (n.empty()) return x.clamp(0.0, 1.0);
  const int64_t c = int64_t(n.mean.size());
  const Tensor m = tensor(n.mean, {c, 1, 1}), s = tensor(n.std, {c, 1, 1});
  return (x * s + m).clamp(0.0, 1.0);
}

}  // namespace loom::cli
