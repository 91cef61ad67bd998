// What the language-model commands share: finding a model folder's tokenizer, telling an LM folder from an
// image-model checkpoint, and reading tokenizer specs.
//   if (is_lm_folder(path)) { auto m = models::load_language_model(path); auto tok = load_run_tokenizer(path); }
#pragma once
#include <string>

#include "loom/text/tokenizer.h"

namespace loom::cli {

// A folder with a config.json that describes a language model (loom's {"arch": ...} or Hugging Face GPT-2).
bool is_lm_folder(const std::string& path);
// The tokenizer saved next to a model (tokenizer.json or tokenizer/), else GPT-2's for a Hugging Face GPT-2
// folder (vocab.json + merges.txt are not read: GPT-2 checkpoints share the one vocabulary).
text::TokenizerPtr load_run_tokenizer(const std::string& dir);
// Saves `tok` into the run folder where load_run_tokenizer finds it.
void save_run_tokenizer(const text::Tokenizer& tok, const std::string& dir);
// A --tokenizer value for tokenize/detokenize/generate/eval: "char" (vocabulary from `corpus`), "char:FILE"
// (vocabulary from FILE's characters), "gpt2", "bpe:PATH", or a saved tokenizer (tokenizer.json file, BPE
// directory, or a run folder holding one).
text::TokenizerPtr tokenizer_from_spec(const std::string& spec, const std::string& corpus);
// decode for streaming: the raw bytes for BPE (no U+FFFD for a character split between tokens).
std::string decode_raw(const text::Tokenizer& tok, const std::vector<int64_t>& ids);

}  // namespace loom::cli
