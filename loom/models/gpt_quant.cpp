#include "loom/models/gpt_quant.h"

#include <filesystem>
#include <map>

#include "loom/autograd/grad_mode.h"
#include "loom/core/allocator.h"
#include "loom/core/error.h"
#include "loom/io/run_file.h"
#include "loom/io/run_safetensors.h"
#include "loom/nn/skip_init.h"
#include "loom/quant/quantized_embedding.h"
#include "loom/quant/quantized_linear.h"

namespace loom::models {

namespace fs = std::filesystem;
using quant::QuantFormat;
using quant::QuantizedLinear;

namespace {

std::shared_ptr<nn::Linear> make_quantized(const nn::Linear& fc, QuantFormat f, bool fill) {
  if (fill) return QuantizedLinear::from_linear(fc, f);
  return std::make_shared<QuantizedLinear>(fc.options, f);
}

// Re-registering a name replaces the child, so the typed member and the module tree stay one object.
template <class Owner>
void swap_linear(Owner& owner, const std::string& name, std::shared_ptr<nn::Linear>& member, QuantFormat f, bool fill) {
  if (dynamic_cast<QuantizedLinear*>(member.get())) return;  // already quantized
  member = owner.register_module(name, make_quantized(*member, f, fill));
}

}  // namespace

void quantize_gpt(GPT& gpt, QuantFormat f, bool fill) {
  LOOM_CHECK(gpt.cfg.n_embd % quant::QK == 0 && gpt.cfg.inner() % quant::QK == 0, "quantize_gpt: n_embd (",
             gpt.cfg.n_embd, ") and the MLP width (", gpt.cfg.inner(), ") must be multiples of ", quant::QK,
             " for ", quant::format_name(f), " blocks");
  NoGradGuard no_grad;
  for (auto& blk : gpt.blocks) {
    swap_linear(*blk->attn, "c_attn", blk->attn->c_attn, f, fill);
    swap_linear(*blk->attn, "c_proj", blk->attn->c_proj, f, fill);
    swap_linear(*blk->mlp, "c_fc", blk->mlp->c_fc, f, fill);
    swap_linear(*blk->mlp, "c_proj", blk->mlp->c_proj, f, fill);
  }
  if (dynamic_cast<QuantizedLinear*>(gpt.lm_head.get())) return;
  // The head: GPT::forward/decode_step use lm_head whenever it is set; a tied model gets one here too.
  std::shared_ptr<nn::Linear> head =
      fill ? std::shared_ptr<nn::Linear>(QuantizedLinear::from_weight(gpt.lm_head_weight(), Tensor(), f))
           : std::make_shared<QuantizedLinear>(
                 nn::LinearOptions{.in = gpt.cfg.n_embd, .out = gpt.cfg.vocab_size, .bias = false}, f);
  gpt.lm_head = gpt.register_module("lm_head", head);
  // Tied: the input lookup reads the head's blocks, dequantizing only the rows a forward needs, so the model holds
  // no f32 (V, C) table and reloading or quantizing twice gives the same model.
  if (gpt.cfg.tie_word_embeddings)
    gpt.wte = gpt.register_module("wte", quant::QuantizedEmbedding::tied_to(static_cast<QuantizedLinear&>(*head)));
  // The f32 weights just replaced went to the CPU allocator's cache: ~500 MB for a GPT-2, never touched when the model
  // was built to be loaded (SkipInitGuard), yet each block's first page is resident (the allocator's header; ~0.8 MiB
  // over GPT-2's 200 blocks), and a quantized model will not ask for blocks that size again. Hand them back.
  cpu_empty_cache();
}

void save_quantized_gpt(const GPT& gpt, QuantFormat f, const std::string& dir, const io::Metadata& extra,
                        const nlohmann::json& source_config) {
  fs::create_directories(dir);
  std::vector<std::pair<std::string, Tensor>> tensors;
  const nn::StateDict sd = gpt.state_dict();  // items() refers into it: keep it alive
  // A tied embedding has no tensor of its own (quant::QuantizedEmbedding reads lm_head.weight_q).
  for (auto& [name, t] : sd.items()) tensors.emplace_back(name, t);
  nlohmann::json config = gpt.config();
  if (source_config.is_object())
    for (auto& [k, v] : source_config.items())
      if (!config.contains(k) && k != "quantization") config[k] = v;
  config["quantization"] = {{"format", quant::format_name(f)}, {"block_size", quant::QK}};
  io::Metadata meta = extra;
  meta["loom_quantization"] = quant::format_name(f);
  io::save_safetensors((fs::path(dir) / "model.safetensors").string(), tensors, meta);
  io::write_file_atomic((fs::path(dir) / "config.json").string(), config.dump(2) + "\n");
}

std::shared_ptr<GPT> load_quantized_gpt(const std::string& dir, const nlohmann::json& config) {
  const auto& q = config["quantization"];
  LOOM_CHECK(q.is_object() && q.contains("format") && q["format"].is_string(), "load_quantized_gpt: ", dir,
             "/config.json: \"quantization\" must be an object with a \"format\" string, got ", q.dump());
  LOOM_CHECK(config.value("arch", "gpt") == "gpt", "load_quantized_gpt: ", dir,
             "/config.json: only GPT models are quantized, got arch '", config.value("arch", ""), "'");
  const QuantFormat f = quant::parse_format(q["format"].get<std::string>());
  std::shared_ptr<GPT> gpt;
  {
    // No random init: every tensor is loaded below (missing ones are refused; a tied wte reads the head's blocks).
    nn::SkipInitGuard skip;
    gpt = std::make_shared<GPT>(GPTConfig::from_json(config));
  }
  quantize_gpt(*gpt, f, /*fill=*/false);
  // Straight from the file into the model (io/run_safetensors.h): mapped and copied in 1 MiB pieces whose file pages
  // are handed back, hashed as copied when a manifest covers the run, so the load holds the model plus one piece,
  // not the file's parsed tensors beside the model (~2.2x the file) or the whole file besides (~3x).
  const std::string path = (fs::path(dir) / "model.safetensors").string();
  const nn::StateDict sd = gpt->state_dict();  // the model's own tensors (detached views of the same storage)
  io::load_run_safetensors_into(path, [&](io::RunSafetensors& file) {
    // Every name and shape is matched before a byte is copied, so a wrong file changes nothing.
    std::map<std::string, const io::SafetensorsEntry*> in_file;
    for (const auto& e : file.layout().entries) {
      const Tensor* dst = sd.find(e.name);
      LOOM_CHECK(dst, "load_quantized_gpt: ", path, " has unexpected tensor '", e.name,
                 "' (written for another architecture or format?)");
      LOOM_CHECK(dst->shape() == e.shape, "load_quantized_gpt: ", path, ": tensor '", e.name, "' has shape ", e.shape,
                 " but the model its config.json describes needs ", dst->shape());
      in_file[e.name] = &e;
    }
    for (const auto& [name, t] : sd.items())
      LOOM_CHECK(in_file.count(name), "load_quantized_gpt: ", path, " has no tensor '", name, "'");
    NoGradGuard no_grad;
    for (const auto& e : file.layout().entries) {
      Tensor dst = *sd.find(e.name);
      if (dst.dtype() == e.dtype && dst.is_contiguous() && is_host(dst.device())) {
        file.copy(e, dst.raw_data());
      } else {  // another dtype (an f16 bias, say): through one tensor-sized buffer and a converting copy
        Tensor src = make_tensor(e.shape, e.dtype);
        file.copy(e, src.raw_data());
        dst.copy_(src);
      }
    }
  });
  gpt->eval();
  return gpt;
}

}  // namespace loom::models
