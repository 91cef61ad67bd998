// Hugging Face's GPT-2 folder layout: config.json (n_layer, n_head, n_embd, n_positions, vocab_size, ...)
// and model.safetensors with HF's names, Conv1D weights stored (in, out), with or without "transformer.".
//   auto gpt = models::load_gpt_hf("gpt2/");          // a folder from the Hub, or one loom wrote
//   models::save_gpt_hf(*gpt, "out/");                 // HF's layout; tied lm_head not duplicated
#pragma once
#include <memory>
#include <string>

#include "loom/models/gpt.h"

namespace loom::models {

// True when config.json looks like a GPT-2 config (has n_layer and n_embd, or model_type "gpt2").
bool is_gpt2_config(const nlohmann::json& config);

// Reads the folder: config.json for the architecture, model.safetensors for the weights (any float dtype,
// converted to f32). Skips HF's attention-mask buffers (attn.bias, attn.masked_bias); a tied lm_head.weight,
// when present, must equal wte.weight. Throws naming the file and the missing or misshapen tensor.
std::shared_ptr<GPT> load_gpt_hf(const std::string& dir);

// Writes config.json (the HF config plus "arch": "gpt") and model.safetensors (HF names without the
// "transformer." prefix, as HF's own GPT-2 files have; metadata {"format": "pt"} plus `extra`).
void save_gpt_hf(const GPT& model, const std::string& dir, const io::Metadata& extra = {});

// The state dict in HF's naming and layout (Conv1D weights transposed to (in, out)); what save writes.
io::NamedTensors gpt_hf_tensors(const GPT& model);

}  // namespace loom::models
