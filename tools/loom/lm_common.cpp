#include "lm_common.h"

#include <filesystem>

#include "loom/core/error.h"
#include "loom/data/file_util.h"
#include "loom/runtime/run.h"

namespace loom::cli {

namespace fs = std::filesystem;

// The run-folder conventions live in the library (loom/runtime/run.h); these names stay for the commands.
bool is_lm_folder(const std::string& path) { return runtime::is_lm_folder(path); }
text::TokenizerPtr load_run_tokenizer(const std::string& dir) { return runtime::load_run_tokenizer(dir); }
void save_run_tokenizer(const text::Tokenizer& tok, const std::string& dir) { runtime::save_run_tokenizer(tok, dir); }
std::string decode_raw(const text::Tokenizer& tok, const std::vector<int64_t>& ids) { return runtime::decode_raw(tok, ids); }

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

}  // namespace loom::cli
