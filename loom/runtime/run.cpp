// load_run and the run-folder tokenizer conventions (moved here from tools/loom/lm_common.cpp).
#include "loom/runtime/run.h"

#include <filesystem>

#include <nlohmann/json.hpp>

#include "loom/core/error.h"
#include "loom/data/file_util.h"
#include "loom/text/bpe.h"

namespace loom::runtime {

namespace fs = std::filesystem;

bool is_lm_folder(const std::string& path) {
  const fs::path cfg = fs::path(path) / "config.json";
  if (!fs::is_directory(path) || !fs::exists(cfg)) return false;
  try {
    const auto j = nlohmann::json::parse(data::read_file(cfg.string()));
    return j.is_object() && (j.contains("arch") || j.contains("n_layer"));
  } catch (const std::exception&) {
    return false;
  }
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

Run load_run(const std::string& dir, const LoadRunOptions& o) {
  Run run;
  run.path = dir;
  run.id = fs::path(dir).lexically_normal().filename().string();
  if (run.id.empty()) run.id = fs::path(dir).lexically_normal().parent_path().filename().string();
  if (is_lm_folder(dir)) {
    run.kind = Run::Kind::language_model;
    run.config = nlohmann::json::parse(data::read_file((fs::path(dir) / "config.json").string()));
    run.metadata["config"] = run.config.dump();
    run.lm = models::load_language_model(dir);
    run.lm->eval();
    run.tokenizer = o.tokenizer ? o.tokenizer : load_run_tokenizer(dir);
    LOOM_CHECK(run.tokenizer->vocab_size() <= run.lm->vocab_size(), dir, ": the tokenizer has ",
               run.tokenizer->vocab_size(), " tokens but the model only ", run.lm->vocab_size(), " (wrong --tokenizer?)");
    run.eot = end_of_text_token(*run.tokenizer);
    return run;
  }
  LOOM_CHECK(fs::exists(dir), dir, ": no such run folder or file");
  if (fs::is_directory(dir) && fs::exists(fs::path(dir) / "config.json") && !fs::exists(fs::path(dir) / "model.safetensors") &&
      !fs::exists(fs::path(dir) / "checkpoint.safetensors"))
    LOOM_FAIL(dir, "/config.json: expected a language-model config (with \"arch\" or GPT-2's \"n_layer\")");
  run.kind = Run::Kind::classifier;
  run.classifier = load_classifier(dir, o.model);
  run.metadata = run.classifier->metadata;
  return run;
}

}  // namespace loom::runtime
