// Vocabulary files: load_tokenizer on a char/word tokenizer JSON file, and BPETokenizer::load on an
// encoder.json + vocab.bpe pair (the input's two halves, split at "\n@@@\n"). The first byte picks which.
// Whatever loads must then encode and decode a little text.
#include "fuzz_common.h"
#include "loom/text/bpe.h"
#include "loom/text/tokenizer.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  static fuzz::ScratchDir dir;
  if (size < 1) return 0;
  const std::string_view body(reinterpret_cast<const char*>(data) + 1, size - 1);
  return fuzz::guarded([&] {
    loom::text::TokenizerPtr tok;
    if (data[0] & 1) {
      const auto [enc, merges] = fuzz::split2(body, "\n@@@\n");
      dir.put("encoder.json", enc);
      dir.put("vocab.bpe", merges);
      tok = loom::text::load_tokenizer(dir.path());
    } else {
      tok = loom::text::load_tokenizer(dir.put("tokenizer.json", body));
    }
    std::vector<int64_t> ids;
    try {
      ids = tok->encode("hello world, the end\n");  // may name an unknown character: a loom::Error
    } catch (const loom::Error&) {
    }
    tok->decode(ids);
  });
}
