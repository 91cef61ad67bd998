#include "loom/text/char_tokenizer.h"
#include "loom/io/json_fields.h"
#include "loom/io/run_file.h"

#include <algorithm>

#include <nlohmann/json.hpp>

#include "loom/core/error.h"
#include "loom/data/file_util.h"
#include "loom/text/unicode.h"

namespace loom::text {

CharTokenizer::CharTokenizer(std::u32string chars) : chars_(std::move(chars)) {
  std::fill(std::begin(ascii_), std::end(ascii_), -1);
  for (size_t i = 0; i < chars_.size(); ++i) {
    const char32_t c = chars_[i];
    LOOM_CHECK(c <= 0x10FFFF && !(c >= 0xD800 && c <= 0xDFFF), "CharTokenizer: U+", std::hex, uint32_t(c),
               " is not a Unicode scalar value");
    LOOM_CHECK(ids_.emplace(c, int64_t(i)).second, "CharTokenizer: character U+", std::hex, uint32_t(c),
               " appears twice in the vocabulary");
    if (c < 128) ascii_[c] = int64_t(i);
  }
}

CharTokenizer CharTokenizer::from_corpus(std::string_view corpus) {
  bool seen_ascii[128] = {};
  std::u32string other;
  for (size_t i = 0; i < corpus.size();) {
    const char32_t c = detail::next_codepoint(corpus, i);
    if (c < 128) {
      seen_ascii[c] = true;
    } else {
      other.push_back(c);
    }
  }
  std::sort(other.begin(), other.end());
  other.erase(std::unique(other.begin(), other.end()), other.end());
  std::u32string chars;
  for (char32_t c = 0; c < 128; ++c)
    if (seen_ascii[c]) chars.push_back(c);
  return CharTokenizer(chars + other);
}

std::vector<int64_t> CharTokenizer::encode(std::string_view text) const {
  std::vector<int64_t> out;
  out.reserve(text.size());
  for (size_t i = 0; i < text.size();) {
    const size_t at = i;
    const char32_t c = detail::next_codepoint(text, i);
    int64_t id = c < 128 ? ascii_[c] : -1;
    if (id < 0 && c >= 128) {
      auto it = ids_.find(c);
      if (it != ids_.end()) id = it->second;
    }
    if (id < 0) {
      std::string shown;
      append_utf8(shown, c);
      LOOM_FAIL("CharTokenizer::encode: character '", shown, "' (U+", std::hex, uint32_t(c), std::dec,
                ") at byte ", at, " is not in the vocabulary of ", chars_.size(), " characters");
    }
    out.push_back(id);
  }
  return out;
}

std::string CharTokenizer::decode(std::span<const int64_t> ids) const {
  std::string out;
  out.reserve(ids.size());
  for (size_t i = 0; i < ids.size(); ++i) {
    LOOM_CHECK(ids[i] >= 0 && ids[i] < vocab_size(), "CharTokenizer::decode: id ", ids[i], " at position ", i,
               " is outside the vocabulary of ", vocab_size(), " characters");
    append_utf8(out, chars_[size_t(ids[i])]);
  }
  return out;
}

void CharTokenizer::save(const std::string& path) const {
  nlohmann::json j = {{"type", "char"}, {"chars", nlohmann::json::array()}};
  for (char32_t c : chars_) j["chars"].push_back(to_utf8(std::u32string(1, c)));
  io::write_file_atomic(path, j.dump(1, ' ', true) + "\n");
}

CharTokenizer CharTokenizer::load(const std::string& path) {
  nlohmann::json j;
  try {
    j = io::parse_json(io::read_run_file(path), path);
  } catch (const nlohmann::json::exception& e) {
    LOOM_FAIL("CharTokenizer::load: ", path, " is not valid JSON: ", e.what());
  }
  LOOM_CHECK(j.is_object() && j.value("type", "") == "char" && j.contains("chars") && j["chars"].is_array(),
             "CharTokenizer::load: ", path, " is not a char tokenizer file ({\"type\": \"char\", \"chars\": [...]})");
  std::u32string chars;
  for (const auto& e : j["chars"]) {
    LOOM_CHECK(e.is_string(), "CharTokenizer::load: ", path, ": every entry of chars must be a string");
    const std::u32string cps = utf8_to_codepoints(e.get<std::string>());
    LOOM_CHECK(cps.size() == 1, "CharTokenizer::load: ", path, ": entry \"", e.get<std::string>(),
               "\" is not one character");
    chars += cps;
  }
  return CharTokenizer(std::move(chars));
}

}  // namespace loom::text
