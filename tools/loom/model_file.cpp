#include "model_file.h"

#include <cerrno>
#include <climits>
#include <cmath>
#include <cstdlib>
#include <filesystem>
#include <iostream>

#include <nlohmann/json.hpp>

#include "loom/core/limits.h"
#include "loom/io/json_fields.h"
#include "loom/train/checkpoint.h"
#include "loom/train/run_folder.h"
#include "loom/trust/load.h"

#ifndef LOOM_VERSION
#define LOOM_VERSION "unknown"
#endif

namespace loom::cli {

namespace fs = std::filesystem;

std::string loom_version() { return LOOM_VERSION; }

std::string nonfinite_weights(const nn::StateDict& sd) {
  int64_t tensors = 0, values = 0;
  std::string first;
  for (const auto& [name, t] : sd) {
    if (!is_floating(t.dtype())) continue;
    const Tensor f = t.to(DType::f32).contiguous();
    const float* p = f.data<float>();
    int64_t bad = 0;
    for (int64_t i = 0; i < f.numel(); ++i) bad += !std::isfinite(p[i]);
    if (bad == 0) continue;
    if (first.empty()) first = name + "' (" + std::to_string(bad) + " of " + std::to_string(f.numel()) + ")";
    ++tensors, values += bad;
  }
  if (values == 0) return "";
  return std::to_string(values) + " NaN/inf weight value(s) in " + std::to_string(tensors) + " tensor(s), first '" +
         first;
}

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
  if (!data.norm.empty()) m["loom.normalize"] = nlohmann::json{{"mean", data.norm.mean}, {"std", data.norm.std}}.dump();
  return m;
}

namespace {

// Folders of the other model families (their config.json names the arch): say which command reads them, instead
// of suggesting --model, which takes image models only.
void refuse_other_families(const std::string& where) {
  const fs::path cfg = fs::path(where) / "config.json";
  if (!fs::is_directory(where) || !fs::is_regular_file(cfg)) return;
  // Read through trust:: so an encrypted run is decrypted (or refused as encrypted) like its weights.
  const nlohmann::json j = io::parse_json(trust::read_run_file(cfg.string()), cfg.string());
  std::string arch = io::JsonFields(j, cfg.string()).string("arch", "");
  if (arch.empty() && (j.contains("n_layer") || j.contains("n_embd"))) arch = "gpt";
  if (arch == "lstm-lm" || arch == "gpt")
    LOOM_FAIL(where, " holds a language model (", arch, "), not an image or regression model: use loom generate "
              "--checkpoint ", where, ", or loom eval --checkpoint ", where, " for its perplexity");
  if (arch == "seq2seq")
    LOOM_FAIL(where, " holds a sequence-to-sequence model: use loom translate --checkpoint ", where);
}

std::string resolve(const std::string& where) {
  LOOM_CHECK(fs::exists(where), where, ": no such file or folder");
  refuse_other_families(where);
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
  if (get("loom.model").empty() && (!get("loom_lm_config").empty() || !get("loom.lm_run").empty()))
    LOOM_FAIL(lm.path, " holds a language model, not an image or regression model: use loom generate or loom eval "
              "on its run folder");
  if (get("loom.model").empty() && !get("loom_seq2seq_config").empty())
    LOOM_FAIL(lm.path, " holds a sequence-to-sequence model: use loom translate on its run folder");
  lm.name = model_name.empty() ? get("loom.model") : model_name;
  LOOM_CHECK(!lm.name.empty(), lm.path, ": the file does not say which model it holds; pass --model NAME");
  LOOM_CHECK(models::is_model_name(lm.name), lm.path, ": unknown model '", lm.name, "'");
  // Every metadata field is parsed with a message naming the file, the key, what was expected and what was found.
  auto bad = [&](const char* key, const std::string& expected) {
    LOOM_FAIL(lm.path, ": malformed loom metadata: '", key, "' must be ", expected, ", found '",
              get(key).substr(0, 60), "'");
  };
  auto int_field = [&](const char* key, int64_t lo, int64_t hi) {
    const std::string v = get(key);
    char* end = nullptr;
    errno = 0;
    const long long x = std::strtoll(v.c_str(), &end, 10);
    if (v.empty() || *end != '\0' || errno == ERANGE || x < lo || x > hi)
      bad(key, "an integer in [" + std::to_string(lo) + ", " + std::to_string(hi) + "]");
    return int64_t(x);
  };
  auto json_field = [&](const char* key, const std::string& expected) {
    try {
      io::check_json_depth(get(key), lm.path);
      return nlohmann::json::parse(get(key));
    } catch (const std::exception&) {
      bad(key, expected);
    }
    return nlohmann::json();  // not reached: bad() throws
  };
  if (get("loom.model") == lm.name && !get("loom.input").empty()) {
    const std::string in_expected = models::is_regression(lm.name) ? "a JSON array of 1 integer (features)"
                                                                   : "a JSON array of 3 integers (C, H, W)";
    const nlohmann::json in = json_field("loom.input", in_expected);
    const size_t n_in = models::is_regression(lm.name) ? 1 : 3;
    if (!in.is_array() || in.size() != n_in) bad("loom.input", in_expected);
    for (const auto& v : in)
      if (!v.is_number_integer() || v.get<int64_t>() < 1 ||
          v.get<int64_t>() > (n_in == 1 ? limits::kMaxFeatures : limits::kMaxImageSide))
        bad("loom.input", in_expected + " within bounds");
    if (n_in == 1) {
      lm.shape.features = in[0].get<int64_t>();
    } else {
      lm.shape.channels = in[0].get<int64_t>(), lm.shape.height = in[1].get<int64_t>();
      lm.shape.width = in[2].get<int64_t>();
      if (lm.shape.channels > 4) bad("loom.input", "1 to 4 channels");
    }
    lm.shape.num_classes = int_field("loom.num_classes", 1, limits::kMaxClasses);
    const nlohmann::json classes = json_field("loom.classes", "a JSON array of class names");
    if (!classes.is_array()) bad("loom.classes", "a JSON array of class names");
    for (const auto& c : classes) {
      if (!c.is_string()) bad("loom.classes", "a JSON array of strings");
      lm.classes.push_back(c.get<std::string>());
    }
    if (!lm.classes.empty() && int64_t(lm.classes.size()) != lm.shape.num_classes)
      bad("loom.classes", std::to_string(lm.shape.num_classes) + " names (loom.num_classes)");
    lm.data.spec = get("loom.data");
    lm.data.target = get("loom.target");
    if (!get("loom.seed").empty()) lm.data.seed = uint64_t(int_field("loom.seed", 0, INT64_MAX));
    if (!get("loom.image_size").empty()) lm.data.image_size = int_field("loom.image_size", 1, limits::kMaxImageSide);
    lm.data.normalize = !get("loom.normalize").empty();
    if (lm.data.normalize) {
      const std::string expected = "{\"mean\": [...], \"std\": [...]} with one finite value per input channel "
                                   "and std > 0";
      const nlohmann::json n = json_field("loom.normalize", expected);
      if (!n.is_object() || !n.contains("mean") || !n.contains("std") || !n["mean"].is_array() ||
          !n["std"].is_array() || int64_t(n["mean"].size()) != lm.shape.channels ||
          n["std"].size() != n["mean"].size())
        bad("loom.normalize", expected);
      for (size_t i = 0; i < n["mean"].size(); ++i) {
        const auto &m = n["mean"][i], &sd_ = n["std"][i];
        if (!m.is_number() || !sd_.is_number() || !std::isfinite(m.get<double>()) ||
            !std::isfinite(sd_.get<double>()) || sd_.get<double>() <= 0)
          bad("loom.normalize", expected);
        lm.data.norm.mean.push_back(m.get<double>());
        lm.data.norm.std.push_back(sd_.get<double>());
      }
    }
  } else {
    lm.shape = infer_spec(lm.name, sd, lm.path);
    lm.data.spec = "";
    lm.data.normalize = false;  // weights from elsewhere: inputs as they are, in [0, 1]
  }
  lm.nonfinite = nonfinite_weights(sd);
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
