#include "loom/text/tokenizer.h"

#include <filesystem>

#include <nlohmann/json.hpp>

#include "loom/core/error.h"
#include "loom/data/file_util.h"
#include "loom/io/json_fields.h"
#include "loom/text/bpe.h"
#include "loom/text/char_tokenizer.h"
#include "loom/text/word_vocab.h"

namespace loom::text {

namespace fs = std::filesystem;

namespace {

// "bpe:PATH" names the directory, or one of the two files in it.
std::string bpe_dir(const std::string& path) {
  const fs::path p(path);
  if (!fs::is_regular_file(p)) return path;
  return p.has_parent_path() ? p.parent_path().string() : std::string(".");
}

}  // namespace

TokenizerPtr make_tokenizer(const std::string& spec, std::string_view corpus) {
  if (spec == "char") return std::make_shared<CharTokenizer>(CharTokenizer::from_corpus(corpus));
  if (spec == "word") return std::make_shared<WordVocab>(WordVocab::build({std::string(corpus)}));
  if (spec == "gpt2") return std::make_shared<BPETokenizer>(BPETokenizer::gpt2());
  if (spec.starts_with("gpt2:") && spec.size() > 5)
    return std::make_shared<BPETokenizer>(BPETokenizer::load(find_gpt2_dir(spec.substr(5))));
  if (spec.starts_with("bpe:") && spec.size() > 4)
    return std::make_shared<BPETokenizer>(BPETokenizer::load(bpe_dir(spec.substr(4))));
  LOOM_FAIL("make_tokenizer: unknown tokenizer \"", spec, "\"; expected char, word, gpt2[:DIR] or bpe:PATH");
}

TokenizerPtr load_tokenizer(const std::string& path) {
  if (fs::is_directory(path)) return std::make_shared<BPETokenizer>(BPETokenizer::load(path));
  nlohmann::json j;
  try {
    j = io::parse_json(data::read_file(path), path);
  } catch (const nlohmann::json::exception& e) {
    LOOM_FAIL("load_tokenizer: ", path, " is neither a BPE directory nor a tokenizer JSON file: ", e.what());
  }
  const std::string type = io::JsonFields(j, path).string("type", "");
  try {
    if (type == "char") return std::make_shared<CharTokenizer>(CharTokenizer::load(path));
    if (type == "word") return std::make_shared<WordVocab>(WordVocab::load(path));
  } catch (const nlohmann::json::exception& e) {
    // The loaders read their fields with nlohmann's accessors: say which file, and that a field is malformed.
    LOOM_FAIL(path, ": malformed ", type, " tokenizer file (a field has the wrong type or is missing: ", e.what(), ")");
  }
  LOOM_FAIL("load_tokenizer: ", path, " has tokenizer type \"", type, "\"; expected char or word");
}

}  // namespace loom::text
