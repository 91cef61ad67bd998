#include "model_file.h"

#include <filesystem>

#include <nlohmann/json.hpp>

#include "loom/train/checkpoint.h"
#include "loom/train/run_folder.h"

#ifndef LOOM_VERSION
#define LOOM_VERSION "unknown"
#endif

namespace loom::cli {

namespace fs = std::filesystem;

std::string loom_version() { return LOOM_VERSION; }

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
  if (!data.norm.empty()) m["loom.normalize"] = nlohmann::json{{"mean", data.norm.mean}, {"std", data.norm.std}}.dump();
  return m;
}

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

LoadedModel load_model(const std::string& where, const std::string& model_name) {
  LoadedModel lm;
  lm.path = resolve(where);
  io::Metadata meta;
  nn::StateDict sd = train::read_weights(lm.path, &meta);
  auto get = [&](const char* k) {
    auto it = meta.find(k);
    return it == meta.end() ? std::string() : it->second;
  };
  lm.name = model_name.empty() ? get("loom.model") : model_name;
  LOOM_CHECK(!lm.name.empty(), lm.path, ": the file does not say which model it holds; pass --model NAME");
  LOOM_CHECK(models::is_model_name(lm.name), lm.path, ": unknown model '", lm.name, "'");
  try {
    if (get("loom.model") == lm.name && !get("loom.input").empty()) {
      const auto in = nlohmann::json::parse(get("loom.input")).get<std::vector<int64_t>>();
      if (models::is_regression(lm.name)) {
        LOOM_CHECK(in.size() == 1, "loom.input must hold 1 value");
        lm.shape.features = in[0];
      } else {
        LOOM_CHECK(in.size() == 3, "loom.input must hold 3 values");
        lm.shape.channels = in[0], lm.shape.height = in[1], lm.shape.width = in[2];
      }
      lm.shape.num_classes = std::stoll(get("loom.num_classes"));
      lm.classes = nlohmann::json::parse(get("loom.classes")).get<std::vector<std::string>>();
      lm.data.spec = get("loom.data");
      lm.data.target = get("loom.target");
      if (!get("loom.seed").empty()) lm.data.seed = std::stoull(get("loom.seed"));
      if (!get("loom.image_size").empty()) lm.data.image_size = std::stoll(get("loom.image_size"));
      lm.data.normalize = !get("loom.normalize").empty();
      if (lm.data.normalize) {
        const auto n = nlohmann::json::parse(get("loom.normalize"));
        lm.data.norm = {n.at("mean").get<std::vector<double>>(), n.at("std").get<std::vector<double>>()};
        LOOM_CHECK(int64_t(lm.data.norm.mean.size()) == lm.shape.channels && lm.data.norm.std.size() ==
                   lm.data.norm.mean.size(), "loom.normalize must hold one mean and std per input channel");
      }
    } else {
      lm.shape = infer_spec(lm.name, sd, lm.path);
      lm.data.spec = "";
      lm.data.normalize = false;  // weights from elsewhere: inputs as they are, in [0, 1]
    }
  } catch (const Error&) {
    throw;
  } catch (const std::exception& e) {
    LOOM_FAIL(lm.path, ": malformed loom metadata: ", e.what());
  }
  lm.model = models::make_model(lm.name, lm.shape);
  try {
    lm.model->load_state_dict(sd);
  } catch (const Error& e) {
    LOOM_FAIL(lm.path, ": the weights do not fit the ", lm.name, " model: ", e.what());
  }
  lm.model->eval();
  return lm;
}

}  // namespace loom::cli
