// Character-level tokenizer: the vocabulary is the sorted set of code points of a corpus.
//   auto tok = text::CharTokenizer::from_corpus(text);   // KJV: 63 characters, '\n' is id 0
//   std::vector<int64_t> ids = tok.encode("In the");  std::string s = tok.decode(ids);
//   tok.save("chars.json");  auto again = text::CharTokenizer::load("chars.json");
#pragma once
#include <string>
#include <unordered_map>
#include <vector>

#include "loom/text/tokenizer.h"

namespace loom::text {

class CharTokenizer : public Tokenizer {
 public:
  // `chars` in id order (each id one Unicode code point); duplicates are an error.
  explicit CharTokenizer(std::u32string chars);
  // Every distinct code point of `corpus`, sorted by code point (Python's sorted(set(text))). Invalid UTF-8
  // counts as U+FFFD.
  static CharTokenizer from_corpus(std::string_view corpus);
  static CharTokenizer load(const std::string& path);

  std::string type() const override { return "char"; }
  int64_t vocab_size() const override { return int64_t(chars_.size()); }
  // Throws loom::Error naming the first character that is not in the vocabulary (and its byte offset).
  std::vector<int64_t> encode(std::string_view text) const override;
  std::string decode(std::span<const int64_t> ids) const override;
  // {"type": "char", "chars": ["\n", " ", ...]}
  void save(const std::string& path) const override;

  bool contains(char32_t c) const { return ids_.count(c) != 0; }
  const std::u32string& chars() const { return chars_; }

 private:
  std::u32string chars_;
  std::unordered_map<char32_t, int64_t> ids_;
  int64_t ascii_[128];  // id of each ASCII character, or -1: the common case without hashing
};

}  // namespace loom::text
