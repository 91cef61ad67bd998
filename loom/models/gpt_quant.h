// Quantized GPTs: every block's Linear and the LM head become quant::QuantizedLinear (ggml Q8_0 / Q4_0 blocks),
// saved as a run folder that load_language_model reloads like any other.
//   auto gpt = std::dynamic_pointer_cast<models::GPT>(models::load_language_model("runs/gpt"));
//   models::quantize_gpt(*gpt, quant::QuantFormat::q8_0);
//   models::save_quantized_gpt(*gpt, quant::QuantFormat::q8_0, "runs/gpt-q8");   // then load_language_model
//
// Folder: config.json is the GPT's config plus {"quantization": {"format": "q8_0"}}; model.safetensors holds
// the state dict with each quantized weight as a U8 tensor `<name>.weight_q` (out, in / 32 * block bytes), in
// loom's (out, in) orientation. A tied embedding is stored once, as the head's blocks, and the model holds it once
// too: wte becomes a quant::QuantizedEmbedding that dequantizes the rows it looks up from the head's blocks (what
// ggml's get_rows on a quantized token_embd gives), so no f32 (vocab, n_embd) table exists. An untied model keeps
// its f32 wte (only the head is quantized).
#pragma once
#include <string>

#include "loom/models/gpt.h"
#include "loom/core/quant_blocks.h"

namespace loom::models {

// Swaps the Linears in place. fill = false leaves the blocks zero (a skeleton for load_state_dict).
void quantize_gpt(GPT& gpt, quant::QuantFormat format, bool fill = true);
// `source_config` (the original folder's config.json) passes on keys the model's config lacks, such as the
// training run's record (loom_train: data, context) that loom eval reads.
void save_quantized_gpt(const GPT& gpt, quant::QuantFormat format, const std::string& dir,
                        const io::Metadata& extra = {}, const nlohmann::json& source_config = {});
// `config` is the folder's parsed config.json (with its "quantization" object).
std::shared_ptr<GPT> load_quantized_gpt(const std::string& dir, const nlohmann::json& config);

}  // namespace loom::models
