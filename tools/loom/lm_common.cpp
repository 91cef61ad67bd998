#include "lm_common.h"

#include <filesystem>

#include <nlohmann/json.hpp>

#include "loom/core/error.h"
#include "loom/data/file_util.h"
#include "loom/io/json_fields.h"
#include "loom/io/run_file.h"
#include "loom/text/bpe.h"
#include "loom/text/char_tokenizer.h"

namespace loom::cli {

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

text::TokenizerPtr tokenizer_from_spec(const std::string& spec, const std::string& corpus) {
  if (spec == "char") return text::make_tokenizer("char", corpus);
  if (spec.starts_with("char:")) return text::make_tokenizer("char", data::read_file(spec.substr(5)));
  if (spec == "gpt2" || spec.starts_with("gpt2:") || spec.starts_with("bpe:") || spec == "word")
    return text::make_tokenizer(spec, corpus);
  if (fs::is_directory(spec) && (fs::exists(fs::path(spec) / "tokenizer.json") || fs::is_directory(fs::path(spec) / "tokenizer") ||
                                 is_lm_folder(spec)))
    return load_run_tokenizer(spec);
  if (fs::exists(spec)) return text::load_tokenizer(spec);
  LOOM_FAIL("--tokenizer ", spec, ": expected char, char:FILE, gpt2, bpe:PATH, or a saved tokenizer file/run folder");
}

std::string decode_raw(const text::Tokenizer& tok, const std::vector<int64_t>& ids) {
  if (auto* bpe = dynamic_cast<const text::BPETokenizer*>(&tok)) return bpe->decode_bytes(ids);
  return tok.decode(ids);
}

}  // namespace loom::cli
