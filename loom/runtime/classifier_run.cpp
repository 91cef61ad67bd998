// Moved from tools/loom/model_file.cpp so the server and C++ programs share it: reads loom's metadata
// (loom.model, loom.input, loom.classes, loom.normalize, ...) and rebuilds the model.
#include "loom/runtime/classifier_run.h"

#include <filesystem>

#include <nlohmann/json.hpp>

#include "loom/core/error.h"
#include "loom/data/transforms.h"
#include "loom/ops/ops.h"
#include "loom/train/checkpoint.h"
#include "loom/train/run_folder.h"

namespace loom::runtime {

namespace fs = std::filesystem;

namespace {

std::string resolve(const std::string& where) {
  LOOM_CHECK(fs::exists(where), where, ": no such file or folder");
  if (!fs::is_directory(where)) return where;
  for (const char* f : {train::kModelFile, train::kCheckpointFile})
    if (fs::exists(fs::path(where) / f)) return (fs::path(where) / f).string();
  LOOM_FAIL(where, ": the folder has neither ", train::kModelFile, " nor ", train::kCheckpointFile);
}

const Tensor& weight(const nn::StateDict& sd, const std::string& key, int64_t dims, const std::string& path) {
  const Tensor* t = sd.find(key);
  LOOM_CHECK(t && t->dim() == dims, path, ": expected a ", dims, "-d tensor '", key,
             "' for this architecture (is --model right?)");
  return *t;
}

// For files without loom metadata: the input geometry that makes the weights fit, assuming square images.
models::ModelSpec infer_spec(const std::string& name, const nn::StateDict& sd, const std::string& path) {
  models::ModelSpec s;
  if (name == "linreg") {
    s.features = weight(sd, "0.weight", 2, path).size(1);
    s.num_classes = 1;
    return s;
  }
  const std::string last = name == "mlp" ? "5.weight" : name == "lenet" ? "11.weight" : "9.weight";
  s.num_classes = weight(sd, last, 2, path).size(0);
  const std::string flat = name == "mlp" ? "1.weight" : "7.weight";
  const int64_t features = weight(sd, flat, 2, path).size(1);
  s.channels = name == "mlp" ? 1 : weight(sd, "0.weight", 4, path).size(1);
  for (int64_t hw = 4; hw <= 1024; ++hw) {
    s.height = s.width = hw;
    try {
      auto m = models::make_model(name, s);
      if (m->state_dict().at(flat).size(1) == features) return s;
    } catch (const Error&) {
      // too small for the convolutions: keep looking
    }
  }
  LOOM_FAIL(path, ": cannot work out a square input size for ", name, " from '", flat, "' with ", features,
            " input features");
}

}  // namespace

ClassifierRun load_classifier(const std::string& where, const std::string& model_name) {
  ClassifierRun r;
  r.path = resolve(where);
  nn::StateDict sd = train::read_weights(r.path, &r.metadata);
  auto get = [&](const char* k) {
    auto it = r.metadata.find(k);
    return it == r.metadata.end() ? std::string() : it->second;
  };
  r.name = model_name.empty() ? get("loom.model") : model_name;
  LOOM_CHECK(!r.name.empty(), r.path, ": the file does not say which model it holds; pass --model NAME");
  LOOM_CHECK(models::is_model_name(r.name), r.path, ": unknown model '", r.name, "'");
  try {
    if (get("loom.model") == r.name && !get("loom.input").empty()) {
      const auto in = nlohmann::json::parse(get("loom.input")).get<std::vector<int64_t>>();
      if (models::is_regression(r.name)) {
        LOOM_CHECK(in.size() == 1, "loom.input must hold 1 value");
        r.shape.features = in[0];
      } else {
        LOOM_CHECK(in.size() == 3, "loom.input must hold 3 values");
        r.shape.channels = in[0], r.shape.height = in[1], r.shape.width = in[2];
      }
      r.shape.num_classes = std::stoll(get("loom.num_classes"));
      r.classes = nlohmann::json::parse(get("loom.classes")).get<std::vector<std::string>>();
      r.data_spec = get("loom.data");
      r.target = get("loom.target");
      if (!get("loom.seed").empty()) r.seed = std::stoull(get("loom.seed"));
      if (!get("loom.image_size").empty()) r.image_size = std::stoll(get("loom.image_size"));
      if (!get("loom.normalize").empty()) {
        const auto n = nlohmann::json::parse(get("loom.normalize"));
        r.mean = n.at("mean").get<std::vector<double>>();
        r.std = n.at("std").get<std::vector<double>>();
        LOOM_CHECK(int64_t(r.mean.size()) == r.shape.channels && r.std.size() == r.mean.size(),
                   "loom.normalize must hold one mean and std per input channel");
      }
    } else {
      r.shape = infer_spec(r.name, sd, r.path);  // weights from elsewhere: inputs as they are, in [0, 1]
    }
  } catch (const Error&) {
    throw;
  } catch (const std::exception& e) {
    LOOM_FAIL(r.path, ": malformed loom metadata: ", e.what());
  }
  r.model = models::make_model(r.name, r.shape);
  try {
    r.model->load_state_dict(sd);
  } catch (const Error& e) {
    LOOM_FAIL(r.path, ": the weights do not fit the ", r.name, " model: ", e.what());
  }
  r.model->eval();
  return r;
}

Tensor preprocess_image(const Tensor& image, const ClassifierRun& run) {
  const models::ModelSpec& s = run.shape;
  Tensor x = image.dtype() == DType::u8 ? data::ToTensor()(image) : image;
  LOOM_CHECK(x.dim() == 3, "image: expected (C, H, W) or a decoded (H, W, C) image, got shape ", x.shape());
  if (x.size(0) != s.channels) {
    LOOM_CHECK(x.size(0) == 1, "image: has ", x.size(0), " channels, the model takes ", s.channels);
    x = x.expand({s.channels, x.size(1), x.size(2)}).contiguous();
  }
  if (x.size(1) != s.height || x.size(2) != s.width) x = data::resize_bilinear(x, s.height, s.width);
  if (!run.mean.empty()) {
    const int64_t c = int64_t(run.mean.size());
    x = (x - tensor(run.mean, {c, 1, 1})) / tensor(run.std, {c, 1, 1});
  }
  return x.contiguous();
}

}  // namespace loom::runtime
