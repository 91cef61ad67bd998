// GPT-2 models in GGUF files (llama.cpp's "gpt2" architecture): the tensor-name mapping between loom's GPT
// (Hugging Face's GPT-2 names) and llama.cpp's, and the loader that turns such a file back into a loom GPT and
// its BPE tokenizer. loom/export/gguf_export.h writes the files; load_run (run.h) calls the loader for a path
// that is a GGUF file, so `loom generate --checkpoint model.gguf` works like a run folder.
//   runtime::GGUFModel m = runtime::load_gguf_gpt("model.gguf");   // m.model, m.tokenizer, m.type ("q8_0", ...)
//
// Types: f32 and f16 tensors load into a float GPT (f16 widened to f32). When every block Linear of the file
// is q8_0 (or every one q4_0) the GPT is quantized (models/gpt_quant.h) and its blocks are the file's bytes,
// so loom runs the same weights llama.cpp runs; the LM head is output.weight, or token_embd.weight when the
// file has no output (GPT-2's tied embedding), and a tied embedding table is the head's blocks dequantized.
#pragma once
#include <memory>
#include <string>

#include <nlohmann/json.hpp>

#include "loom/io/gguf.h"
#include "loom/models/gpt.h"
#include "loom/text/bpe.h"

namespace loom::runtime {

// llama.cpp's name of a loom GPT state-dict entry ("h.3.mlp.c_fc.weight" -> "blk.3.ffn_up.weight"; a quantized
// layer's "...weight_q" -> "...weight"), or "" for a name that has none.
std::string gguf_gpt2_name(const std::string& loom_name);

struct GGUFModel {
  std::shared_ptr<models::GPT> model;                // eval mode
  std::shared_ptr<text::BPETokenizer> tokenizer;     // from tokenizer.ggml.tokens / merges
  nlohmann::json config;                             // the GPT config plus {"gguf": {"type": ..., "file": ...}}
  std::string type;                                  // the block Linears' type: f32, f16, q8_0, q4_0
  int64_t in_place_bytes = 0;  // f32 weights used where they lie in the mapped file, not copied (see load_gguf_gpt)
};

// Throws loom::Error naming the file and the problem: not gpt2, missing keys or tensors, wrong shapes,
// unsupported tensor types, a tokenizer that is not GPT-2-style BPE.
// A plain (unchecked, unencrypted) file is mapped, and when all its tensors are f32, those that start on a 64-byte
// boundary (every one in a file loom exports, whose general.alignment is 64) become the model's weights where they
// lie, as llama.cpp uses its mapped file: no copy and no fresh memory to fault in. The mapping is private, so a write
// to such a weight (fine-tuning the loaded model) changes a copy of its page, never the file; the model keeps the
// mapping alive, and keeps working after the file is deleted or renamed over. Other tensors, those of quantized or
// f16 files, and every tensor of a checked file are copied.
GGUFModel load_gguf_gpt(const std::string& path);

// The f32 values of a GGUF tensor of any type loom reads (f16 widened, q8_0/q4_0 dequantized).
std::vector<float> gguf_tensor_floats(const io::GGUFFile& f, const io::GGUFTensorInfo& t);

}  // namespace loom::runtime
