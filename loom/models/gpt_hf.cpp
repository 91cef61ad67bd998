// loom's GPT keeps nn::Linear weights as (out, in), PyTorch's layout, so the GEMMs and the optimizer see
// the usual shapes; HF's GPT-2 uses Conv1D with (in, out). The transpose happens only here, at the file.
#include "loom/models/gpt_hf.h"

#include <algorithm>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <map>
#include <set>
#include <sstream>

#include "loom/autograd/grad_mode.h"
#include "loom/core/allocator.h"
#include "loom/core/error.h"
#include "loom/io/json_fields.h"
#include "loom/io/mapped_weights.h"
#include "loom/io/run_file.h"
#include "loom/io/run_safetensors.h"
#include "loom/io/safetensors.h"
#include "loom/io/safetensors_layout.h"
#include "loom/nn/skip_init.h"
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

nlohmann::json read_json(const fs::path& p) { return io::read_run_json(p.string()); }

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

namespace {

// One tensor of the file and where it goes: `param` is the model's tensor it fills (transposed when the file holds a
// Conv1D (in, out) weight), or, for a tied lm_head.weight (tied_head), none: that tensor is kept to be compared with
// wte.weight. Tensors loom skips (HF's mask buffers) get no Placement.
struct Placement {
  std::string raw;
  Tensor param;
  bool transpose = false, tied_head = false;
};

// Matches the file's tensors (names and shapes, before any data is read) to the model, as a strict load_state_dict
// would: every model tensor filled exactly once, no tensor the model does not have, every shape right. Checking it
// all up front means a bad file fails before any weight is copied, and the weights can then stream in one at a time.
std::vector<Placement> place(const GPT& model, const std::vector<std::pair<std::string, Shape>>& file,
                             const std::string& st_path) {
  std::map<std::string, Tensor> targets;
  const nn::StateDict sd = model.state_dict();
  for (auto& [name, t] : sd.items()) targets.emplace(name, t);
  std::vector<Placement> out;
  std::set<std::string> filled;
  std::vector<std::string> unexpected, problems;
  for (const auto& [raw, shape] : file) {
    Placement p{raw, Tensor(), false, false};
    const std::string name = raw.rfind("transformer.", 0) == 0 ? raw.substr(12) : raw;
    // HF's causal-mask buffers: constants loom rebuilds, not weights.
    if (ends_with(name, ".attn.bias") || ends_with(name, ".attn.masked_bias")) continue;
    if (name == "lm_head.weight" && model.cfg.tie_word_embeddings) {
      p.tied_head = true;
      out.push_back(p);
      continue;
    }
    const auto it = targets.find(name);
    if (it == targets.end()) {
      unexpected.push_back(raw);
      continue;
    }
    if (!filled.insert(name).second) {
      problems.push_back(name + " appears twice (with and without the \"transformer.\" prefix)");
      continue;
    }
    p.param = it->second;
    p.transpose = is_conv1d_weight(name);
    LOOM_CHECK(!p.transpose || shape.size() == 2, "load_gpt_hf: ", raw, " in ", st_path,
               " must be 2-D (Conv1D (in, out)), got ", shape);
    const Shape want = p.transpose ? Shape({p.param.size(1), p.param.size(0)}) : p.param.shape();
    if (shape != want) {
      std::ostringstream os;
      using loom::operator<<;
      os << "size mismatch for " << name << ": the file has shape " << shape << ", the model needs " << want
         << (p.transpose ? " (Conv1D weights are stored (in, out))" : "");
      problems.push_back(os.str());
    }
    out.push_back(p);
  }
  std::vector<std::string> missing;
  for (const auto& [name, t] : targets)
    if (!filled.count(name)) missing.push_back(name);
  std::string msg;
  auto list = [](const std::vector<std::string>& v) {
    std::string s;
    for (const auto& k : v) s += (s.empty() ? "\"" : ", \"") + k + "\"";
    return s;
  };
  if (!missing.empty()) msg += "\n\tMissing key(s): " + list(missing) + ".";
  if (!unexpected.empty()) msg += "\n\tUnexpected key(s): " + list(unexpected) + ".";
  for (const auto& p : problems) msg += "\n\t" + p;
  LOOM_CHECK(msg.empty(), "load_gpt_hf: the weights in ", st_path,
             " do not fit the GPT-2 described by config.json:", msg);
  return out;
}

// Copies one file tensor into its place (converting the dtype, undoing Conv1D's transpose); keeps a tied head.
void fill(const Placement& p, const Tensor& src, Tensor& tied_head) {
  if (p.tied_head) {
    tied_head = src;
    return;
  }
  NoGradGuard no_grad;
  Tensor dst = p.param;
  dst.copy_(p.transpose ? src.t() : src);
}

}  // namespace

// Tensors from this size up may be used in place (load_gpt_hf).
constexpr uint64_t kInPlaceFrom = uint64_t(8) << 20;

std::shared_ptr<GPT> load_gpt_hf(const std::string& dir) {
  const fs::path cfg_path = fs::path(dir) / "config.json", st_path = fs::path(dir) / "model.safetensors";
  LOOM_CHECK(fs::exists(cfg_path), "load_gpt_hf: ", cfg_path.string(), " not found");
  LOOM_CHECK(fs::exists(st_path), "load_gpt_hf: ", st_path.string(),
             " not found (only the safetensors form of a GPT-2 folder is read; convert pytorch_model.bin first)");
  const nlohmann::json config = read_json(cfg_path);
  LOOM_CHECK(is_gpt2_config(config), "load_gpt_hf: ", cfg_path.string(),
             " is not a GPT-2 config (no n_layer / n_embd, model_type is not gpt2)");
  const GPTConfig cfg = GPTConfig::from_json(config, cfg_path.string());
  std::shared_ptr<GPT> model;
  {
    // No random init: place() below checks the file fills every parameter before any is used.
    nn::SkipInitGuard skip;
    model = std::make_shared<GPT>(cfg);
  }
  const std::string path = st_path.string();
  Tensor lm_head;
  uint64_t in_place_bytes = 0;
  // Mapped and read tensor by tensor (io/run_safetensors.h). A large f32 tensor whose layout is loom's (the token
  // embedding: a third of GPT-2 124M) and that starts 64-byte aligned in a plain file is used where it lies, as
  // load_gguf_gpt does (io/mapped_weights.h): no copy, no fresh memory. Only large ones: reading a small tensor
  // through the mapping faults in the file's large folios around it, neighbours' bytes included, which count as
  // resident beside their copies (small f32 tensors in place between copied blocks raised a GGUF load's peak by
  // 64 MiB). The rest is copied with pread, so none of the file's pages stay resident beside the copy: the load
  // holds the model plus about one tensor, never the whole file besides. Under a manifest every byte is hashed as
  // it is copied (nothing is used in place) and the load fails before returning if any differs. Encrypted runs
  // come decrypted in memory through the same code.
  io::load_run_safetensors_into(path, [&](io::RunSafetensors& file) {
    const io::SafetensorsLayout& layout = file.layout();
    std::vector<std::pair<std::string, Shape>> names;
    for (const auto& e : layout.entries) names.emplace_back(e.name, e.shape);
    const std::vector<Placement> places = place(*model, names, path);  // every name and shape before any copy
    const std::shared_ptr<const io::MappedFile> mapping = file.mapping();  // null: copy everything
    size_t k = 0;
    for (const auto& e : layout.entries) {
      if (k < places.size() && places[k].raw == e.name) {
        const Placement& p = places[k++];
        const bool same_layout = !p.tied_head && !p.transpose && p.param.dtype() == e.dtype && p.param.is_contiguous();
        if (same_layout && e.dtype == DType::f32 && e.end - e.begin >= kInPlaceFrom && mapping &&
            io::use_mapped_bytes(p.param, mapping, mapping->data_at(e.begin), size_t(e.end - e.begin))) {
          in_place_bytes += e.end - e.begin;
          continue;  // the file's pages are the weight now: never released
        }
        if (same_layout) {
          file.copy(e, p.param.raw_data());  // same dtype and layout: one copy
        } else {
          // Read (and, under a manifest, hashed) into a temporary, then converted or transposed into place by the
          // Backend's copy, whose transposed path tiles and splits over the threads. Reading with file.copy (pread)
          // rather than through the mapping keeps the file's pages out of the process: the temporary is one
          // tensor, recycled by the allocator for the next of its size.
          Tensor src = make_tensor(e.shape, e.dtype);
          file.copy(e, src.raw_data());
          fill(p, src, lm_head);
        }
      }
      file.release(e);
    }
  });
  // The blocks the constructor made for weights now used in place went to the allocator's cache untouched; nothing
  // will ask for blocks that size again.
  if (in_place_bytes > 0) cpu_empty_cache();
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
