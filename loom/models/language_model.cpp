// make/load by architecture name, and the default folder writer. Each architecture adds its branch here
// (an explicit if-chain rather than a static registry: static initialisers in a static library get dropped
// by the linker when nothing references their object file).
#include "loom/models/language_model.h"

#include <filesystem>

#include "loom/core/error.h"
#include "loom/io/json_fields.h"
#include "loom/io/run_file.h"
#include "loom/models/gpt.h"
#include "loom/models/gpt_hf.h"
#include "loom/models/gpt_quant.h"
#include "loom/models/lstm_lm.h"

namespace loom::models {

namespace fs = std::filesystem;

LanguageModelPtr make_language_model(const nlohmann::json& config, const std::string& where) {
  const std::string arch = io::JsonFields(config, where).string("arch", "");
  if (arch == "lstm-lm") return std::make_shared<LSTMLM>(LSTMLMConfig::from_json(config, where));
  if (arch == "gpt") return std::make_shared<GPT>(GPTConfig::from_json(config, where));
  LOOM_FAIL(where, ": unknown arch '", arch, "' (known: lstm-lm, gpt)");
}

void LanguageModel::reset_slot(SlotDecodeState& state, int64_t slot) {
  LOOM_CHECK(slot >= 0 && slot < state.slots(), "reset_slot: slot ", slot, " is outside [0, ", state.slots(), ")");
  state.lengths[size_t(slot)] = 0;
}

void check_slot_rows(const SlotDecodeState& state, std::span<const int64_t> rows, const Tensor& idx, const char* who) {
  LOOM_CHECK(idx.dtype() == DType::i64 && idx.dim() == 2 && idx.size(0) == int64_t(rows.size()) && idx.size(1) >= 1,
             who, ": expected token ids as an int64 (", rows.size(), ", t >= 1) tensor (one row per slot), got ",
             idx.dtype(), " with shape ", idx.shape());
  std::vector<bool> seen(size_t(state.slots()), false);
  for (int64_t r : rows) {
    LOOM_CHECK(r >= 0 && r < state.slots(), who, ": slot ", r, " is outside [0, ", state.slots(), ")");
    LOOM_CHECK(!seen[size_t(r)], who, ": slot ", r, " appears twice in one step");
    seen[size_t(r)] = true;
    LOOM_CHECK(state.max_len == 0 || state.lengths[size_t(r)] + idx.size(1) <= state.max_len, who, ": slot ", r,
               " would hold ", state.lengths[size_t(r)] + idx.size(1), " tokens, more than its max_len ", state.max_len);
  }
}

void LanguageModel::save(const std::string& dir, const io::Metadata& extra) const {
  fs::create_directories(dir);
  io::Metadata meta = extra;
  meta["loom_lm_config"] = config().dump();
  io::save_safetensors((fs::path(dir) / "model.safetensors").string(), state_dict().items(), meta);
  io::write_file_atomic((fs::path(dir) / "config.json").string(), config().dump(2) + "\n");
}

LanguageModelPtr load_language_model(const std::string& dir) {
  const fs::path cfg = fs::path(dir) / "config.json";
  LOOM_CHECK(fs::exists(cfg), "load_language_model: ", cfg.string(), " not found (expected a folder written by "
             "`loom train` or a Hugging Face GPT-2 folder)");
  const nlohmann::json config = io::read_run_json(cfg.string());
  if (config.contains("quantization")) return load_quantized_gpt(dir, config);  // models/gpt_quant.h
  const std::string arch = io::JsonFields(config, cfg.string()).string("arch", "");
  // GPT folders are Hugging Face GPT-2 folders (loom writes its GPTs that way too): gpt_hf.h reads them.
  if (arch == "gpt" || (!config.contains("arch") && is_gpt2_config(config))) return load_gpt_hf(dir);
  auto model = make_language_model(config, cfg.string());
  const std::string weights = (fs::path(dir) / "model.safetensors").string();
  auto file = io::load_run_safetensors(weights);  // manifest check / decryption (io/run_file.h)
  nn::StateDict sd;
  for (auto& [name, t] : file.tensors) sd.insert(name, t);
  try {
    model->load_state_dict(sd, true);
  } catch (const Error& e) {
    LOOM_FAIL(weights, ": the weights do not fit the model described by ", cfg.string(),
              " (was config.json edited, or copied from another run?): ", e.what());
  }
  return model;
}

}  // namespace loom::models
