// Word-level vocabulary with special tokens, as the textbooks' seq2seq and classifiers build it.
//   auto v = text::WordVocab::build({"the cat sat.", "the dog"}, {.min_freq = 1});
//   v.encode("the bird", {.add_bos = true, .add_eos = true});   // {2, 4, 1, 3}: <bos> the <unk> <eos>
//   v.decode(ids);  v.save("vocab.json");  auto again = text::WordVocab::load("vocab.json");
#pragma once
#include <cstdint>
#include <string>
#include <unordered_map>
#include <vector>

#include "loom/text/tokenizer.h"

namespace loom::text {

// Splits on whitespace; a run of letters, digits and combining marks is one word, any other character (each
// punctuation mark or symbol) is a word of its own: "Don't stop!" -> Don ' t stop !
// With lower, ASCII letters are lowercased first.
std::vector<std::string> split_words(std::string_view text, bool lower = false);

struct WordVocabOptions {
  int64_t min_freq = 1;  // words seen fewer times map to <unk>
  int64_t max_size = 0;  // > 0: at most this many entries, the four special tokens included
  bool lower = false;    // lowercase ASCII letters before splitting (also applied by encode)
};

struct EncodeOptions {
  bool add_bos = false;
  bool add_eos = false;
};

class WordVocab : public Tokenizer {
 public:
  static constexpr int64_t kPad = 0, kUnk = 1, kBos = 2, kEos = 3;  // fixed ids of <pad> <unk> <bos> <eos>

  // `words` in id order after the four special tokens (which must not be repeated in it).
  explicit WordVocab(std::vector<std::string> words, bool lower = false);
  // Counts the words of `texts`; keeps those seen at least min_freq times, most frequent first (ties in
  // byte order, so the ids do not depend on input order), cut to max_size.
  static WordVocab build(const std::vector<std::string>& texts, const WordVocabOptions& o = {});
  static WordVocab load(const std::string& path);

  std::string type() const override { return "word"; }
  int64_t vocab_size() const override { return int64_t(itos_.size()); }
  std::vector<int64_t> encode(std::string_view text) const override { return encode(text, {}); }
  std::vector<int64_t> encode(std::string_view text, const EncodeOptions& o) const;
  // Words joined by single spaces; <pad> is dropped, the other special tokens are written out.
  std::string decode(std::span<const int64_t> ids) const override;
  // {"type": "word", "lower": false, "words": ["<pad>", "<unk>", "<bos>", "<eos>", ...]}
  void save(const std::string& path) const override;

  int64_t id(const std::string& word) const;  // kUnk for an unknown word
  const std::string& word(int64_t id) const;
  bool contains(const std::string& word) const { return stoi_.count(word) != 0; }
  bool lower() const { return lower_; }

 private:
  std::vector<std::string> itos_;
  std::unordered_map<std::string, int64_t> stoi_;
  bool lower_;
};

}  // namespace loom::text
