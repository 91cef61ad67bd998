#include "loom/text/word_vocab.h"
#include "loom/io/json_fields.h"
#include "loom/io/run_file.h"

#include <algorithm>
#include <map>

#include <nlohmann/json.hpp>

#include "loom/core/error.h"
#include "loom/data/file_util.h"
#include "loom/text/unicode.h"

namespace loom::text {

namespace {

const char* const kSpecials[] = {"<pad>", "<unk>", "<bos>", "<eos>"};

// Combining marks (\p{M}) stay inside a word, so "café" spelled with a combining accent is one word.
bool is_word_char(char32_t c) { return is_letter(c) || is_number(c) || is_mark(c); }

}  // namespace

std::vector<std::string> split_words(std::string_view text, bool lower) {
  std::vector<std::string> out;
  std::string cur;
  for (size_t i = 0; i < text.size();) {
    char32_t c = detail::next_codepoint(text, i);
    if (lower && c >= 'A' && c <= 'Z') c += 'a' - 'A';
    if (is_word_char(c)) {
      append_utf8(cur, c);
      continue;
    }
    if (!cur.empty()) out.push_back(std::move(cur)), cur.clear();
    if (!is_js_space(c)) {
      std::string one;
      append_utf8(one, c);
      out.push_back(std::move(one));
    }
  }
  if (!cur.empty()) out.push_back(std::move(cur));
  return out;
}

WordVocab::WordVocab(std::vector<std::string> words, bool lower) : lower_(lower) {
  itos_.assign(std::begin(kSpecials), std::end(kSpecials));
  itos_.insert(itos_.end(), std::make_move_iterator(words.begin()), std::make_move_iterator(words.end()));
  for (size_t i = 0; i < itos_.size(); ++i) {
    LOOM_CHECK(!itos_[i].empty(), "WordVocab: word ", i, " is empty");
    LOOM_CHECK(stoi_.emplace(itos_[i], int64_t(i)).second, "WordVocab: \"", itos_[i], "\" appears twice",
               i < 4 ? "" : " (the special tokens <pad> <unk> <bos> <eos> are added by WordVocab itself)");
  }
}

WordVocab WordVocab::build(const std::vector<std::string>& texts, const WordVocabOptions& o) {
  LOOM_CHECK(o.min_freq >= 1, "WordVocab::build: min_freq must be at least 1, got ", o.min_freq);
  LOOM_CHECK(o.max_size == 0 || o.max_size >= 4, "WordVocab::build: max_size ", o.max_size,
             " leaves no room for the 4 special tokens");
  std::map<std::string, int64_t> counts;
  for (const std::string& t : texts)
    for (std::string& w : split_words(t, o.lower)) ++counts[std::move(w)];
  std::vector<std::pair<std::string, int64_t>> kept;
  for (auto& [w, c] : counts) {
    const bool special = std::find(std::begin(kSpecials), std::end(kSpecials), w) != std::end(kSpecials);
    if (c >= o.min_freq && !special) kept.emplace_back(w, c);
  }
  // std::map gave byte order; a stable sort by count keeps it among equal counts.
  std::stable_sort(kept.begin(), kept.end(), [](const auto& a, const auto& b) { return a.second > b.second; });
  if (o.max_size > 0 && int64_t(kept.size()) > o.max_size - 4) kept.resize(size_t(o.max_size - 4));
  std::vector<std::string> words;
  words.reserve(kept.size());
  for (auto& [w, c] : kept) words.push_back(std::move(w));
  return WordVocab(std::move(words), o.lower);
}

std::vector<int64_t> WordVocab::encode(std::string_view text, const EncodeOptions& o) const {
  std::vector<int64_t> out;
  if (o.add_bos) out.push_back(kBos);
  for (const std::string& w : split_words(text, lower_)) out.push_back(id(w));
  if (o.add_eos) out.push_back(kEos);
  return out;
}

std::string WordVocab::decode(std::span<const int64_t> ids) const {
  std::string out;
  for (int64_t i : ids) {
    if (i == kPad) continue;
    if (!out.empty()) out += ' ';
    out += word(i);
  }
  return out;
}

int64_t WordVocab::id(const std::string& w) const {
  auto it = stoi_.find(w);
  return it == stoi_.end() ? kUnk : it->second;
}

const std::string& WordVocab::word(int64_t i) const {
  LOOM_CHECK(i >= 0 && i < vocab_size(), "WordVocab: id ", i, " is outside the vocabulary of ", vocab_size(),
             " words");
  return itos_[size_t(i)];
}

void WordVocab::save(const std::string& path) const {
  nlohmann::json j = {{"type", "word"}, {"lower", lower_}, {"words", itos_}};
  io::write_file_atomic(path, j.dump(1, ' ', true) + "\n");
}

WordVocab WordVocab::load(const std::string& path) {
  nlohmann::json j;
  try {
    j = io::parse_json(io::read_run_file(path), path);
  } catch (const nlohmann::json::exception& e) {
    LOOM_FAIL("WordVocab::load: ", path, " is not valid JSON: ", e.what());
  }
  LOOM_CHECK(j.is_object() && j.value("type", "") == "word" && j.contains("words") && j["words"].is_array(),
             "WordVocab::load: ", path, " is not a word vocabulary file ({\"type\": \"word\", \"words\": [...]})");
  std::vector<std::string> words;
  for (const auto& e : j["words"]) {
    LOOM_CHECK(e.is_string(), "WordVocab::load: ", path, ": every entry of words must be a string");
    words.push_back(e.get<std::string>());
  }
  LOOM_CHECK(words.size() >= 4 && std::equal(std::begin(kSpecials), std::end(kSpecials), words.begin()),
             "WordVocab::load: ", path, " must start with <pad> <unk> <bos> <eos>");
  words.erase(words.begin(), words.begin() + 4);
  return WordVocab(std::move(words), j.value("lower", false));
}

}  // namespace loom::text
