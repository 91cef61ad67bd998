// One file per checkpoint keeps "the latest checkpoint" a single atomic rename: a folder of several files
// could be caught half-replaced by a kill, a single safetensors file cannot.
#include "loom/train/checkpoint.h"
#include "loom/io/json_fields.h"
#include "loom/trust/load.h"

#include <filesystem>

#include <nlohmann/json.hpp>

#include "loom/autograd/grad_mode.h"

namespace loom::train {

namespace {

constexpr const char* kKind = "loom.kind";
constexpr const char* kTraining = "training-checkpoint";
constexpr const char* kOptimizer = "loom.optimizer";
const std::string kModelPrefix = "model.", kOptPrefix = "optimizer.";

void check_readable(const std::string& path) {
  namespace fs = std::filesystem;
  std::error_code ec;
  LOOM_CHECK(fs::exists(path, ec), path, ": no such file");
  LOOM_CHECK(!fs::is_directory(path, ec), path, ": is a folder, expected a .safetensors file");
}

}  // namespace

bool is_training_checkpoint(const io::SafetensorsFile& f) {
  auto it = f.metadata.find(kKind);
  return it != f.metadata.end() && it->second == kTraining;
}

nn::StateDict clone_state(const nn::Module& model) {
  NoGradGuard g;
  nn::StateDict out;
  for (const auto& [k, t] : model.state_dict()) out.insert(k, t.clone());
  return out;
}

void save_weights(const std::string& path, const nn::Module& model, const io::Metadata& metadata) {
  io::NamedTensors tensors;
  for (const auto& [k, t] : model.state_dict()) tensors.emplace_back(k, t);
  io::Metadata meta = metadata;
  meta["format"] = "pt";  // what the Hugging Face loaders expect of a PyTorch state dict
  io::save_safetensors(path, tensors, meta);
}

nn::StateDict read_weights(const std::string& path, io::Metadata* metadata) {
  check_readable(path);
  // Through loom::trust: checks the run folder's manifest / signature and decrypts, in memory (docs/privacy.md).
  io::SafetensorsFile f = io::parse_safetensors(trust::read_run_file(path), path);
  nn::StateDict sd;
  if (is_training_checkpoint(f)) {
    for (const auto& [k, t] : f.tensors)
      if (k.starts_with(kModelPrefix)) sd.insert(k.substr(kModelPrefix.size()), t);
  } else {
    for (const auto& [k, t] : f.tensors) sd.insert(k, t);
  }
  LOOM_CHECK(!sd.empty(), path, ": the file holds no model weights");
  if (metadata) *metadata = f.metadata;
  return sd;
}

io::Metadata load_weights(const std::string& path, nn::Module& model, bool strict) {
  io::Metadata meta;
  nn::StateDict sd = read_weights(path, &meta);
  try {
    model.load_state_dict(sd, strict);
  } catch (const Error& e) {
    throw Error(path + ": the weights do not fit the model: " + e.what());
  }
  return meta;
}

void save_checkpoint(const std::string& path, const Checkpoint& c) {
  io::NamedTensors tensors;
  for (const auto& [k, t] : c.model) tensors.emplace_back(kModelPrefix + k, t);
  for (const auto& [k, t] : c.optimizer.tensors) tensors.emplace_back(kOptPrefix + k, t);
  io::Metadata meta = c.metadata;
  meta[kKind] = kTraining;
  nlohmann::json opt = {{"name", c.optimizer_name}, {"scalars", c.optimizer.scalars}};
  meta[kOptimizer] = opt.dump();
  // Parent folders are made here so a first save into a new run folder works.
  std::filesystem::path parent = std::filesystem::path(path).parent_path();
  if (!parent.empty()) std::filesystem::create_directories(parent);
  io::save_safetensors(path, tensors, meta);
}

Checkpoint load_checkpoint(const std::string& path) {
  check_readable(path);
  io::SafetensorsFile f = io::load_safetensors(path);
  LOOM_CHECK(is_training_checkpoint(f), path, ": not a training checkpoint (it has no \"", kKind, "\": \"", kTraining,
             "\" entry; plain weights such as model.safetensors cannot resume training)");
  Checkpoint c;
  for (const auto& [k, t] : f.tensors) {
    if (k.starts_with(kModelPrefix))
      c.model.insert(k.substr(kModelPrefix.size()), t);
    else if (k.starts_with(kOptPrefix))
      c.optimizer.tensors.emplace_back(k.substr(kOptPrefix.size()), t);
    else
      LOOM_FAIL(path, ": unexpected tensor '", k, "' (training checkpoints hold model.* and optimizer.*)");
  }
  LOOM_CHECK(!c.model.empty(), path, ": the checkpoint holds no model weights");
  auto it = f.metadata.find(kOptimizer);
  LOOM_CHECK(it != f.metadata.end(), path, ": the checkpoint has no \"", kOptimizer, "\" entry");
  try {
    const nlohmann::json opt = io::parse_json(it->second, path + " (optimizer section)");
    c.optimizer_name = opt.at("name").get<std::string>();
    for (const auto& [k, v] : opt.at("scalars").items()) {
      LOOM_CHECK(v.is_number(), "scalar '", k, "' is not a number");
      c.optimizer.scalars[k] = v.get<double>();
    }
  } catch (const std::exception& e) {
    LOOM_FAIL(path, ": the optimizer section is malformed: ", e.what());
  }
  for (const auto& [k, v] : f.metadata)
    if (k != kKind && k != kOptimizer) c.metadata[k] = v;
  return c;
}

}  // namespace loom::train
