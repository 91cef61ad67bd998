// GPT -> GGUF v3 for llama.cpp: the model as llama.cpp's "gpt2" architecture (its tensor names and gpt2.* keys)
// with its byte-level BPE vocabulary (tokenizer.ggml.*), so llama.cpp and anything built on it (node-llama-cpp,
// ollama, LM Studio) run loom's model; runtime::load_gguf_gpt reads the files back.
//   export_::export_gguf("runs/gpt", "model.gguf", io::GGMLType::q8_0);          // a run or HF GPT-2 folder
//   export_::save_gpt_gguf(*gpt, tokenizer, "model.gguf", {.type = io::GGMLType::f16});
//
// Which tensors take --type: f16 converts every 2-D tensor (embeddings, head, block Linears); q8_0 / q4_0 the
// block Linears and the LM head (a tied GPT's token_embd, which is its head) as ggml's convert/quantize tools
// do; everything else (norms, biases, and for q8_0/q4_0 the position table and an untied token table) stays f32.
// A quantized loom GPT (`loom quantize`) exported with its own format passes its blocks through unchanged.
#pragma once
#include <string>

#include "loom/io/gguf.h"
#include "loom/models/gpt.h"
#include "loom/text/bpe.h"

namespace loom::export_ {

struct GGUFExportOptions {
  io::GGMLType type = io::GGMLType::f32;
  std::string name = "loom-gpt2";  // general.name
};

// Builds the GGUF (metadata, vocabulary, tensors) in memory; what save_gpt_gguf writes.
io::GGUFBuilder gpt_gguf(const models::GPT& gpt, const text::BPETokenizer& tokenizer, const GGUFExportOptions& o = {});
// Writes atomically. Throws loom::Error naming the problem (a width that is not a multiple of 32 for q8_0/q4_0,
// a tokenizer larger than the model's vocabulary).
void save_gpt_gguf(const models::GPT& gpt, const text::BPETokenizer& tokenizer, const std::string& path,
                   const GGUFExportOptions& o = {});

struct GGUFExportSummary {
  int64_t tensors = 0;
  uint64_t bytes = 0;  // the file's size
};
// Loads `checkpoint` with runtime::load_run (a GPT run folder, a quantized one, a Hugging Face GPT-2 folder, or
// a GGUF file) and writes it to `out`. Models that are not GPTs, and tokenizers that are not byte-level BPE
// (llama.cpp's gpt2 vocabulary type), are refused with a message saying so.
GGUFExportSummary export_gguf(const std::string& checkpoint, const std::string& out, const GGUFExportOptions& o = {});

// "f32" / "f16" / "q8_0" / "q4_0" -> the type; throws naming the accepted values.
io::GGMLType parse_gguf_type(const std::string& s);

}  // namespace loom::export_
