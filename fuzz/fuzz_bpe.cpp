// GPT-2 byte-level BPE on arbitrary bytes: encode, decode, decode_bytes; and decode of arbitrary ids.
// Uses the real GPT-2 vocabulary when scripts/install_deps.sh fetched it, else a small BPE trained here
// (the code under test is the same; only the tables differ).
#include <cstring>
#include <vector>

#include "fuzz_common.h"
#include "loom/text/bpe.h"
#include "loom/text/unicode.h"

namespace {
const loom::text::BPETokenizer& tokenizer() {
  static const loom::text::BPETokenizer tok = [] {
    try {
      return loom::text::BPETokenizer::gpt2();
    } catch (const loom::Error&) {
      std::fprintf(stderr, "fuzz_bpe: GPT-2 vocabulary not found; fuzzing a small trained BPE instead\n");
      return loom::text::train_bpe("The quick brown fox jumps over the lazy dog. In the beginning God created "
                                   "the heaven and the earth. 1234 don't  \n\t caf\xc3\xa9 \xe6\x97\xa5\xe6\x9c\xac",
                                   {.vocab_size = 300, .min_frequency = 1});
    }
  }();
  return tok;
}
}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const auto& tok = tokenizer();
  const std::string_view text(reinterpret_cast<const char*>(data), size);
  return fuzz::guarded([&] {
    const std::vector<int64_t> ids = tok.encode(text);
    for (int64_t id : ids)
      if (id < 0 || id >= tok.vocab_size()) std::abort();
    const std::string back = tok.decode_bytes(ids);
    // Byte-level BPE loses nothing on valid UTF-8 (the documented contract).
    if (loom::text::is_valid_utf8(text) && back != text) {
      std::fprintf(stderr, "fuzz_bpe: decode_bytes(encode(s)) != s for valid UTF-8 input\n");
      std::abort();
    }
    tok.decode(ids);
    // The same bytes read as token ids (some out of range: those must throw loom::Error, not crash).
    std::vector<int64_t> raw(size / 4);
    for (size_t i = 0; i < raw.size(); ++i) {
      int32_t v;
      std::memcpy(&v, data + 4 * i, 4);
      raw[i] = v % (tok.vocab_size() + 8);
    }
    tok.decode(raw);
  });
}
