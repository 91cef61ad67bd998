// Moved from tools/loom/model_file.cpp so the server and C++ programs share it: reads loom's metadata
// (loom.model, loom.input, loom.classes, loom.normalize, ...) with checked parsing and rebuilds the model.
#include "loom/runtime/classifier_run.h"

#include <algorithm>

#include <cerrno>
#include <climits>
#include <cmath>
#include <cstdlib>
#include <filesystem>

#include <nlohmann/json.hpp>

#include "loom/autograd/grad_mode.h"
#include "loom/compress/prune.h"
#include "loom/quant/quantize_dynamic.h"
#include "loom/core/error.h"
#include "loom/core/limits.h"
#include "loom/data/transforms.h"
#include "loom/io/json_fields.h"
#include "loom/ops/ops.h"
#include "loom/trust/load.h"

namespace loom::runtime {

namespace fs = std::filesystem;

namespace {

// What `loom train` writes (train/run_folder.h, train/checkpoint.h). The runtime sits below train, so the few
// facts of the file format it reads are repeated here: a training checkpoint says "loom.kind":
// "training-checkpoint" in its metadata and keeps the model's tensors under "model.".
constexpr const char* kModelFile = "model.safetensors";
constexpr const char* kCheckpointFile = "checkpoint.safetensors";
constexpr const char* kKind = "loom.kind";
constexpr const char* kTrainingCheckpoint = "training-checkpoint";
constexpr std::string_view kModelPrefix = "model.";

// train::read_weights, without train: through loom::trust (manifest, signature, decryption: docs/privacy.md).
nn::StateDict read_weights(const std::string& path, io::Metadata* metadata) {
  std::error_code ec;
  LOOM_CHECK(fs::exists(path, ec), path, ": no such file");
  LOOM_CHECK(!fs::is_directory(path, ec), path, ": is a folder, expected a .safetensors file");
  io::SafetensorsFile f = io::parse_safetensors(trust::read_run_file(path), path);
  auto kind = f.metadata.find(kKind);
  const bool checkpoint = kind != f.metadata.end() && kind->second == kTrainingCheckpoint;
  nn::StateDict sd;
  for (const auto& [k, t] : f.tensors) {
    if (!checkpoint)
      sd.insert(k, t);
    else if (k.starts_with(kModelPrefix))
      sd.insert(k.substr(kModelPrefix.size()), t);
  }
  LOOM_CHECK(!sd.empty(), path, ": the file holds no model weights");
  if (metadata) *metadata = f.metadata;
  return sd;
}

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
  for (const char* f : {kModelFile, kCheckpointFile})
    if (fs::exists(fs::path(where) / f)) return (fs::path(where) / f).string();
  LOOM_FAIL(where, ": the folder has neither ", kModelFile, " nor ", kCheckpointFile);
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
  // The hidden widths as the weights have them (narrower after structured pruning).
  const std::vector<std::string> hidden = name == "mlp"     ? std::vector<std::string>{"1", "3"}
                                          : name == "lenet" ? std::vector<std::string>{"0", "3", "7", "9"}
                                                            : std::vector<std::string>{"0", "3", "7"};
  for (const auto& layer : hidden) {
    const Tensor* t = sd.find(layer + ".weight");
    LOOM_CHECK(t && t->dim() >= 2, path, ": expected a weight '", layer, ".weight' for ", name, " (is --model right?)");
    s.widths.push_back(t->size(0));
  }
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

std::string nonfinite_weights(const nn::StateDict& sd) {
  NoGradGuard no_grad;
  int64_t tensors = 0, values = 0;
  std::string first;
  for (const auto& [name, t] : sd) {
    if (!is_floating(t.dtype()) || t.numel() == 0) continue;
    // A NaN or +-inf anywhere makes the sum of its chunk NaN or inf, so a finite sum clears the chunk with one
    // reduction and no temporary (through tensor ops: the backend's door). A non-finite sum is counted exactly:
    // x - x is NaN exactly where x is NaN or +-inf, and NaN != NaN (finite values whose float sum overflows land here
    // too, and count 0). Chunks of 1M values bound the temporaries of that count: a whole GPT-2 embedding's (x - x,
    // the mask, its f64 copy) took ~500 MB at the peak of `loom generate`'s load. The sum alone also keeps a clean
    // load's memory flat: the allocator caches a temporary's touched pages, and x - x over 1M values left 3 MiB
    // resident beside a q4_0 GPT-2 whose file is 70 MiB.
    const Tensor flat = t.reshape({-1});
    constexpr int64_t kChunk = int64_t(1) << 20;
    int64_t bad = 0;
    for (int64_t at = 0; at < flat.numel(); at += kChunk) {
      const Tensor part = flat.narrow(0, at, std::min(kChunk, flat.numel() - at));
      const Tensor x = part.dtype() == DType::f64 || part.dtype() == DType::f32 ? part : part.to(DType::f32);
      if (std::isfinite(sum(x).item())) continue;
      const Tensor d = x - x;
      bad += int64_t(sum(ne(d, d).to(DType::f64)).item());
    }
    if (bad == 0) continue;
    if (first.empty()) first = name + "' (" + std::to_string(bad) + " of " + std::to_string(t.numel()) + ")";
    ++tensors, values += bad;
  }
  if (values == 0) return "";
  return std::to_string(values) + " NaN/inf weight value(s) in " + std::to_string(tensors) + " tensor(s), first '" +
         first;
}

ClassifierRun load_classifier(const std::string& where, const std::string& model_name, bool keep_masks) {
  ClassifierRun r;
  r.path = resolve(where);
  nn::StateDict sd = read_weights(r.path, &r.metadata);
  auto get = [&](const char* k) {
    auto it = r.metadata.find(k);
    return it == r.metadata.end() ? std::string() : it->second;
  };
  if (get("loom.model").empty() && (!get("loom_lm_config").empty() || !get("loom.lm_run").empty()))
    LOOM_FAIL(r.path, " holds a language model, not an image or regression model: use loom generate or loom eval "
              "on its run folder");
  if (get("loom.model").empty() && !get("loom_seq2seq_config").empty())
    LOOM_FAIL(r.path, " holds a sequence-to-sequence model: use loom translate on its run folder");
  r.name = model_name.empty() ? get("loom.model") : model_name;
  LOOM_CHECK(!r.name.empty(), r.path, ": the file does not say which model it holds; pass --model NAME");
  LOOM_CHECK(models::is_model_name(r.name), r.path, ": unknown model '", r.name, "'");
  // Every metadata field is parsed with a message naming the file, the key, what was expected and what was found.
  auto bad = [&](const char* key, const std::string& expected) {
    LOOM_FAIL(r.path, ": malformed loom metadata: '", key, "' must be ", expected, ", found '",
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
      io::check_json_depth(get(key), r.path);
      return nlohmann::json::parse(get(key));
    } catch (const std::exception&) {
      bad(key, expected);
    }
    return nlohmann::json();  // not reached: bad() throws
  };
  if (get("loom.model") == r.name && !get("loom.input").empty()) {
    const std::string in_expected = models::is_regression(r.name) ? "a JSON array of 1 integer (features)"
                                                                  : "a JSON array of 3 integers (C, H, W)";
    const nlohmann::json in = json_field("loom.input", in_expected);
    const size_t n_in = models::is_regression(r.name) ? 1 : 3;
    if (!in.is_array() || in.size() != n_in) bad("loom.input", in_expected);
    for (const auto& v : in)
      if (!v.is_number_integer() || v.get<int64_t>() < 1 ||
          v.get<int64_t>() > (n_in == 1 ? limits::kMaxFeatures : limits::kMaxImageSide))
        bad("loom.input", in_expected + " within bounds");
    if (n_in == 1) {
      r.shape.features = in[0].get<int64_t>();
    } else {
      r.shape.channels = in[0].get<int64_t>(), r.shape.height = in[1].get<int64_t>();
      r.shape.width = in[2].get<int64_t>();
      if (r.shape.channels > 4) bad("loom.input", "1 to 4 channels");
    }
    r.shape.num_classes = int_field("loom.num_classes", 1, limits::kMaxClasses);
    const nlohmann::json classes = json_field("loom.classes", "a JSON array of class names");
    if (!classes.is_array()) bad("loom.classes", "a JSON array of class names");
    for (const auto& c : classes) {
      if (!c.is_string()) bad("loom.classes", "a JSON array of strings");
      r.classes.push_back(c.get<std::string>());
    }
    if (!r.classes.empty() && int64_t(r.classes.size()) != r.shape.num_classes)
      bad("loom.classes", std::to_string(r.shape.num_classes) + " names (loom.num_classes)");
    r.data_spec = get("loom.data");
    r.target = get("loom.target");
    if (!get("loom.seed").empty()) r.seed = uint64_t(int_field("loom.seed", 0, INT64_MAX));
    if (!get("loom.widths").empty()) {
      const std::string expected = "a JSON array of positive integers (the hidden widths)";
      const nlohmann::json w = json_field("loom.widths", expected);
      if (!w.is_array()) bad("loom.widths", expected);
      for (const auto& v : w) {
        if (!v.is_number_integer() || v.get<int64_t>() < 1) bad("loom.widths", expected);
        r.shape.widths.push_back(v.get<int64_t>());
      }
    }
    if (!get("loom.image_size").empty()) r.image_size = int_field("loom.image_size", 1, limits::kMaxImageSide);
    if (!get("loom.normalize").empty()) {
      const std::string expected = "{\"mean\": [...], \"std\": [...]} with one finite value per input channel "
                                   "and std > 0";
      const nlohmann::json n = json_field("loom.normalize", expected);
      if (!n.is_object() || !n.contains("mean") || !n.contains("std") || !n["mean"].is_array() ||
          !n["std"].is_array() || int64_t(n["mean"].size()) != r.shape.channels ||
          n["std"].size() != n["mean"].size())
        bad("loom.normalize", expected);
      for (size_t i = 0; i < n["mean"].size(); ++i) {
        const auto &m = n["mean"][i], &s = n["std"][i];
        if (!m.is_number() || !s.is_number() || !std::isfinite(m.get<double>()) || !std::isfinite(s.get<double>()) ||
            s.get<double>() <= 0)
          bad("loom.normalize", expected);
        r.mean.push_back(m.get<double>());
        r.std.push_back(s.get<double>());
      }
    }
  } else {
    // Weights from elsewhere: inputs as they are, in [0, 1]; the widths as the (mask-folded) weights have them.
    r.shape = infer_spec(r.name, compress::prune::fold_masks(sd), r.path);
  }
  r.nonfinite = nonfinite_weights(sd);
  r.model = models::make_model(r.name, r.shape);
  // An int8 run (`loom quantize --format int8`): its "<layer>.weight_int8" tensors say which layers to swap for
  // int8 ones before loading.
  const std::vector<std::string> int8_layers = quant::int8_layers_in(sd);
  if (!int8_layers.empty() && keep_masks)
    LOOM_FAIL(r.path, ": an int8-quantized run is for inference only (eval, predict, serve, summary); prune or "
              "fine-tune the float run it was quantized from");
  if (int8_layers.empty() && get("loom.quantization") == "int8")
    LOOM_FAIL(r.path, ": the metadata says int8 but the file holds no '<layer>.weight_int8' tensor");
  try {
    quant::prepare_int8(*r.model, int8_layers);
    if (keep_masks) {
      // "0.weight_orig" + "0.weight_mask": module "0" has its "weight" pruned.
      for (const auto& [k, t] : sd)
        if (k.ends_with("_orig") && sd.find(k.substr(0, k.size() - 5) + "_mask")) {
          const std::string path = k.substr(0, k.size() - 5), module = path.substr(0, path.rfind('.'));
          LOOM_CHECK(path.find('.') != std::string::npos, r.path, ": pruned tensor '", k,
                     "' names no layer");
          compress::prune::identity(*r.model->get_submodule(module), path.substr(path.rfind('.') + 1));
        }
    } else {
      sd = compress::prune::fold_masks(sd);
    }
    r.model->load_state_dict(sd);
  } catch (const Error& e) {
    LOOM_FAIL(r.path, ": the weights do not fit the ", r.name, " model: ", e.what());
  }
  r.model->eval();
  return r;
}

Tensor preprocess_image(const Tensor& image, const ClassifierRun& run) {
  const models::ModelSpec& s = run.shape;
  Tensor x = image;
  if (x.dtype() == DType::u8) {
    // The steps of training on an image folder (and of loom predict): antialiased resize of the u8 image, then
    // ToTensor.
    LOOM_CHECK(x.dim() == 3, "image: expected (C, H, W) or a decoded (H, W, C) image, got shape ", x.shape());
    if (x.size(0) != s.height || x.size(1) != s.width) x = data::resize_image(x, s.height, s.width);
    x = data::ToTensor()(x);
  }
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
