// load_run and the run-folder tokenizer conventions (moved here from tools/loom/lm_common.cpp).
#include "loom/runtime/run.h"

#include <malloc.h>

#include <filesystem>
#include <fstream>

#include <nlohmann/json.hpp>

#include "loom/core/error.h"
#include "loom/io/json_fields.h"
#include "loom/io/gguf.h"
#include "loom/io/run_file.h"
#include "loom/runtime/gguf_gpt.h"
#include "loom/text/bpe.h"
#include "loom/trust/encrypt.h"

namespace loom::runtime {

namespace fs = std::filesystem;

bool is_lm_folder(const std::string& path) {
  const fs::path cfg = fs::path(path) / "config.json";
  if (!fs::is_directory(path) || !fs::exists(cfg)) return false;
  // A malformed config.json is reported as such (naming the file), not as "not a language-model folder".
  const auto j = io::read_run_json(cfg.string());  // checked / decrypted like the weights (io/run_file.h)
  const std::string arch = io::JsonFields(j, cfg.string()).string("arch", "");
  if (arch == "lstm-lm" || arch == "gpt") return true;
  return arch.empty() && (j.contains("n_layer") || j.contains("n_embd"));
}

text::TokenizerPtr load_run_tokenizer(const std::string& dir) {
  const fs::path d(dir);
  if (fs::exists(d / "tokenizer.json")) return text::load_tokenizer((d / "tokenizer.json").string());
  if (fs::is_directory(d / "tokenizer")) return text::load_tokenizer((d / "tokenizer").string());
  if (fs::exists(d / "encoder.json") && fs::exists(d / "vocab.bpe")) return text::load_tokenizer(dir);
  if (fs::exists(d / "vocab.json") || fs::exists(d / "merges.txt")) return text::make_tokenizer("gpt2");
  LOOM_FAIL(dir, ": no tokenizer next to the model (expected tokenizer.json or tokenizer/); pass --tokenizer");
}

void save_run_tokenizer(const text::Tokenizer& tok, const std::string& dir) {
  fs::create_directories(dir);
  if (tok.type() == "bpe")
    tok.save((fs::path(dir) / "tokenizer").string());
  else
    tok.save((fs::path(dir) / "tokenizer.json").string());
}

std::string decode_raw(const text::Tokenizer& tok, const std::vector<int64_t>& ids) {
  if (auto* bpe = dynamic_cast<const text::BPETokenizer*>(&tok)) return bpe->decode_bytes(ids);
  return tok.decode(ids);
}

int64_t end_of_text_token(const text::Tokenizer& tok) {
  if (auto* bpe = dynamic_cast<const text::BPETokenizer*>(&tok)) return bpe->token_to_id("<|endoftext|>");
  return -1;
}

namespace {

// A GGUF file encrypted at rest (trust::encrypt_run) starts with the encryption magic, not "GGUF"; by its name it
// still goes to the GGUF loader, whose reader decrypts it under the load policy's key (or says that a key is needed).
bool is_encrypted_gguf(const std::string& path) {
  if (fs::path(path).extension() != ".gguf") return false;
  std::ifstream in(path, std::ios::binary);
  std::string head(trust::kEncMagic.size(), '\0');
  return in && in.read(head.data(), std::streamsize(head.size())) && head == trust::kEncMagic;
}

}  // namespace

Run load_run(const std::string& dir, const LoadRunOptions& o) {
  Run run;
  run.path = dir;
  run.id = fs::path(dir).lexically_normal().filename().string();
  if (run.id.empty()) run.id = fs::path(dir).lexically_normal().parent_path().filename().string();
  if (fs::is_regular_file(dir) && (io::is_gguf_file(dir) || is_encrypted_gguf(dir))) {  // a GGUF GPT-2 (gguf_gpt.h)
    GGUFModel m = load_gguf_gpt(dir);
    run.kind = Run::Kind::language_model;
    run.config = m.config;
    run.metadata["config"] = run.config.dump();
    run.lm = m.model;
    run.nonfinite = nonfinite_weights(run.lm->state_dict());
    run.tokenizer = o.tokenizer ? o.tokenizer : m.tokenizer;
    run.eot = end_of_text_token(*run.tokenizer);
    return run;
  }
  if (is_lm_folder(dir)) {
    run.kind = Run::Kind::language_model;
    run.config = io::read_run_json((fs::path(dir) / "config.json").string());
    run.metadata["config"] = run.config.dump();
    // The tokenizer before the model: parsing GPT-2's encoder.json takes ~8 MB of temporaries (a JSON object of 50k
    // tokens) that, freed and trimmed back to the kernel here, never sit on top of the model's memory at the peak.
    run.tokenizer = o.tokenizer ? o.tokenizer : load_run_tokenizer(dir);
    ::malloc_trim(0);  // glibc keeps freed small blocks in its heap; this returns their whole pages to the kernel
    run.lm = models::load_language_model(dir);
    run.lm->eval();
    run.nonfinite = nonfinite_weights(run.lm->state_dict());
    LOOM_CHECK(run.tokenizer->vocab_size() <= run.lm->vocab_size(), dir, ": the tokenizer has ",
               run.tokenizer->vocab_size(), " tokens but the model only ", run.lm->vocab_size(), " (wrong --tokenizer?)");
    run.eot = end_of_text_token(*run.tokenizer);
    return run;
  }
  LOOM_CHECK(fs::exists(dir), dir, ": no such run folder or file");
  if (fs::is_directory(dir) && fs::exists(fs::path(dir) / "config.json") && !fs::exists(fs::path(dir) / "model.safetensors") &&
      !fs::exists(fs::path(dir) / "checkpoint.safetensors"))
    LOOM_FAIL(dir, "/config.json: expected a language-model config (\"arch\": \"gpt\" or \"lstm-lm\", or GPT-2's \"n_layer\")");
  run.kind = Run::Kind::classifier;
  run.classifier = load_classifier(dir, o.model);
  run.metadata = run.classifier->metadata;
  run.nonfinite = run.classifier->nonfinite;
  return run;
}

}  // namespace loom::runtime
