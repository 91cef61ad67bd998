// The interface every tokenizer implements, and how to make or reload one by name.
//   auto tok = text::make_tokenizer("char", corpus);           // or "gpt2", "bpe:DIR", "word"
//   std::vector<int64_t> ids = tok->encode("In the beginning");  std::string s = tok->decode(ids);
//   tok->save("run/tokenizer");  auto again = text::load_tokenizer("run/tokenizer");
#pragma once
#include <cstdint>
#include <memory>
#include <span>
#include <string>
#include <string_view>
#include <vector>

namespace loom::text {

class Tokenizer {
 public:
  virtual ~Tokenizer() = default;
  virtual std::string type() const = 0;  // "char", "word" or "bpe"
  virtual int64_t vocab_size() const = 0;
  virtual std::vector<int64_t> encode(std::string_view text) const = 0;
  // Throws loom::Error on an id outside [0, vocab_size).
  virtual std::string decode(std::span<const int64_t> ids) const = 0;
  // char and word tokenizers write one JSON file at `path`; BPE writes encoder.json and vocab.bpe into the
  // directory `path` (created if needed). load_tokenizer(path) reads either back.
  virtual void save(const std::string& path) const = 0;
};
using TokenizerPtr = std::shared_ptr<const Tokenizer>;

// "char" and "word" build a vocabulary from `corpus` (default options); "gpt2" loads the GPT-2 vocabulary
// (see find_gpt2_dir); "bpe:PATH" loads encoder.json + vocab.bpe from the directory PATH (or, when PATH is
// a file, from its directory). Throws loom::Error naming the spec when it is none of these.
TokenizerPtr make_tokenizer(const std::string& spec, std::string_view corpus = {});
// Reloads what Tokenizer::save wrote: a BPE directory or a char/word JSON file.
TokenizerPtr load_tokenizer(const std::string& path);

}  // namespace loom::text
