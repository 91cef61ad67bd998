// loom's GPT keeps nn::Linear weights as (out, in), PyTorch's layout, so the GEMMs and the optimizer see
// the usual shapes; HF's GPT-2 uses Conv1D with (in, out). The transpose happens only here, at the file.
#include "loom/models/gpt_hf.h"

#include <filesystem>
#include <fstream>

#include "loom/core/error.h"
#include "loom/io/json_fields.h"
#include "loom/io/safetensors.h"
#include "loom/ops/reduce.h"

namespace loom::models {

namespace fs = std::filesystem;

namespace {

// The four Conv1D layers of a block, whose weights HF stores transposed.
bool is_conv1d_weight(const std::string& name) {
  for (const char* s : {".attn.c_attn.weight", ".attn.c_proj.weight", ".mlp.c_fc.weight", ".mlp.c_proj.weight"}) {
    const std::string suf = s;
    if (name.size() > suf.size() && name.compare(name.size() - suf.size(), suf.size(), suf) == 0) return true;
  }
  return false;
}

bool ends_with(const std::string& s, const std::string& suf) {
  return s.size() >= suf.size() && s.compare(s.size() - suf.size(), suf.size(), suf) == 0;
}

nlohmann::json read_json(const fs::path& p) { return io::read_json_file(p.string()); }

}  // namespace

bool is_gpt2_config(const nlohmann::json& c) {
  if (!c.is_object()) return false;
  if (c.contains("arch") && c["arch"].is_string() && c["arch"] == "gpt") return true;
  if (c.contains("model_type") && c["model_type"].is_string() && c["model_type"] == "gpt2") return true;
  return c.contains("n_layer") && c.contains("n_embd");
}

io::NamedTensors gpt_hf_tensors(const GPT& model) {
  io::NamedTensors out;
  const nn::StateDict sd = model.state_dict();
  for (auto& [name, t] : sd.items()) {
    if (name == "lm_head.weight" && model.cfg.tie_word_embeddings) continue;
    out.emplace_back(name, is_conv1d_weight(name) ? t.t().contiguous() : t);
  }
  return out;
}

void save_gpt_hf(const GPT& model, const std::string& dir, const io::Metadata& extra) {
  fs::create_directories(dir);
  io::Metadata meta = extra;
  meta["format"] = "pt";
  io::save_safetensors((fs::path(dir) / "model.safetensors").string(), gpt_hf_tensors(model), meta);
  io::write_file_atomic((fs::path(dir) / "config.json").string(), model.config().dump(2) + "\n");
}

std::shared_ptr<GPT> load_gpt_hf(const std::string& dir) {
  const fs::path cfg_path = fs::path(dir) / "config.json", st_path = fs::path(dir) / "model.safetensors";
  LOOM_CHECK(fs::exists(cfg_path), "load_gpt_hf: ", cfg_path.string(), " not found");
  LOOM_CHECK(fs::exists(st_path), "load_gpt_hf: ", st_path.string(),
             " not found (only the safetensors form of a GPT-2 folder is read; convert pytorch_model.bin first)");
  const nlohmann::json config = read_json(cfg_path);
  LOOM_CHECK(is_gpt2_config(config), "load_gpt_hf: ", cfg_path.string(),
             " is not a GPT-2 config (no n_layer / n_embd, model_type is not gpt2)");
  auto model = std::make_shared<GPT>(GPTConfig::from_json(config, cfg_path.string()));
  io::SafetensorsFile file = io::load_safetensors(st_path.string());

  nn::StateDict sd;
  Tensor lm_head;
  for (auto& [raw, t] : file.tensors) {
    std::string name = raw.rfind("transformer.", 0) == 0 ? raw.substr(12) : raw;
    // HF's causal-mask buffers: constants loom rebuilds, not weights.
    if (ends_with(name, ".attn.bias") || ends_with(name, ".attn.masked_bias")) continue;
    if (name == "lm_head.weight" && model->cfg.tie_word_embeddings) {
      lm_head = t;
      continue;
    }
    if (is_conv1d_weight(name)) {
      LOOM_CHECK(t.dim() == 2, "load_gpt_hf: ", raw, " in ", st_path.string(), " must be 2-D (Conv1D (in, out)), got ",
                 t.shape());
      sd.insert(name, t.t().contiguous());
    } else {
      sd.insert(name, t);
    }
  }
  try {
    model->load_state_dict(sd, true);
  } catch (const Error& e) {
    LOOM_FAIL("load_gpt_hf: the weights in ", st_path.string(), " do not fit the GPT-2 described by config.json: ",
              e.what());
  }
  if (lm_head.defined()) {
    const Tensor& wte = model->wte->weight;
    LOOM_CHECK(lm_head.shape() == wte.shape() &&
                   (lm_head.to(wte.dtype()) - wte).abs().max().item() == 0.0,
               "load_gpt_hf: lm_head.weight differs from wte.weight but config.json ties them "
               "(tie_word_embeddings); set tie_word_embeddings to false to load a separate head");
  }
  return model;
}

}  // namespace loom::models
