// Run folders as a library: what `loom train` writes (or a Hugging Face GPT-2 folder) loaded in one call,
// with everything needed to use the model: the model, its tokenizer, its input normalisation, its metadata.
//   runtime::Run run = runtime::load_run("runs/gpt");             // run.kind == Run::Kind::language_model
//   runtime::GenerationSession s(run);  s.generate("In the beginning", {.max_new_tokens = 50}, print_piece);
//   runtime::Run cnn = runtime::load_run("runs/cnn");             // cnn.classifier->model, cnn.classifier->classes
#pragma once
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "loom/io/safetensors.h"
#include "loom/models/language_model.h"
#include "loom/runtime/classifier_run.h"
#include "loom/text/tokenizer.h"

namespace loom::runtime {

struct Run {
  enum class Kind { language_model, classifier };
  Kind kind = Kind::language_model;
  std::string path;  // the folder (or file) it came from
  std::string id;    // a short name: the folder's base name (what the server lists in /v1/models)
  // Language models: the model (in eval mode), its tokenizer, and the end-of-text token (-1 when the
  // tokenizer has none; GPT-2's <|endoftext|>) at which generation ends.
  models::LanguageModelPtr lm;
  text::TokenizerPtr tokenizer;
  int64_t eot = -1;
  nlohmann::json config;  // the model's config.json
  // Image classifiers (and regressors): the model with its geometry, classes and normalisation.
  std::optional<ClassifierRun> classifier;
  io::Metadata metadata;  // a classifier's safetensors header; for LMs, the config as text under "config"
  // nonfinite_weights() of the model: "" when every weight is finite. load_run does not refuse such a model
  // (loom eval reports on it); loom generate and loom serve do.
  std::string nonfinite;
};

struct LoadRunOptions {
  text::TokenizerPtr tokenizer = {};  // overrides the folder's tokenizer (text::load_tokenizer, make_tokenizer)
  std::string model = {};      // classifiers without loom metadata: the architecture name
};

// A GGUF file of a GPT-2 (gguf_gpt.h: llama.cpp's gpt2 layout, f32/f16/q8_0/q4_0) loads as a language model with
// the vocabulary the file carries. Else a language-model folder (config.json with "arch" "gpt"/"lstm-lm", or GPT-2's n_layer/n_embd), else a classifier
// run folder or weights file (runtime::load_classifier: checked metadata, other model families refused, read
// through loom::trust). Throws loom::Error naming the file and what was expected.
Run load_run(const std::string& dir, const LoadRunOptions& o = {});

// A folder with a config.json that describes a language model (loom's {"arch": "gpt" | "lstm-lm"} or Hugging
// Face GPT-2). A malformed config.json throws (naming the file) rather than answering false.
bool is_lm_folder(const std::string& path);
// The tokenizer saved next to a model (tokenizer.json or tokenizer/), else GPT-2's for a Hugging Face GPT-2
// folder (vocab.json + merges.txt are not read: GPT-2 checkpoints share the one vocabulary).
text::TokenizerPtr load_run_tokenizer(const std::string& dir);
// Saves `tok` into the run folder where load_run_tokenizer finds it.
void save_run_tokenizer(const text::Tokenizer& tok, const std::string& dir);
// decode for streaming: the raw bytes for BPE (no U+FFFD for a character split between tokens).
std::string decode_raw(const text::Tokenizer& tok, const std::vector<int64_t>& ids);
// The tokenizer's end-of-text token (GPT-2's <|endoftext|>), or -1.
int64_t end_of_text_token(const text::Tokenizer& tok);

}  // namespace loom::runtime
