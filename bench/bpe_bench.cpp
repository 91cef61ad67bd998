// GPT-2 BPE encode speed: CPU seconds to encode a text with a fresh tokenizer (its pre-token cache cold, as
// for any new text) and to run bpe() on every pre-token with no cache at all (the merge loop alone).
//   bpe_bench FILE [ROUNDS]     prints one JSON object; run it under `perf stat -e task-clock` or compare cpu_s
#include <algorithm>
#include <cstdio>
#include <fstream>
#include <sstream>

#include "bench_util.h"
#include "loom/text/bpe.h"
#include "loom/text/pretokenize.h"

int main(int argc, char** argv) {
  if (argc < 2) {
    std::fprintf(stderr, "usage: bpe_bench FILE [ROUNDS]\n");
    return 2;
  }
  std::ifstream in(argv[1], std::ios::binary);
  if (!in) {
    std::fprintf(stderr, "bpe_bench: cannot read %s\n", argv[1]);
    return 1;
  }
  std::stringstream ss;
  ss << in.rdbuf();
  const std::string text = ss.str();
  const int rounds = argc > 2 ? std::atoi(argv[2]) : 3;
  double encode_s = 1e30, bpe_s = 1e30;
  size_t ids = 0, bpe_ids = 0;
  for (int r = 0; r < rounds; ++r) {
    const auto tok = loom::text::BPETokenizer::gpt2();  // a fresh cache each round
    double t0 = loom::bench::cpu_seconds();
    ids = tok.encode(text).size();
    encode_s = std::min(encode_s, loom::bench::cpu_seconds() - t0);
    std::vector<std::string_view> pieces;
    loom::text::gpt2_pretokenize_valid(text, pieces);
    t0 = loom::bench::cpu_seconds();
    bpe_ids = 0;
    for (std::string_view p : pieces) bpe_ids += tok.bpe(p).size();
    bpe_s = std::min(bpe_s, loom::bench::cpu_seconds() - t0);
  }
  std::printf("{\"bench\": \"bpe_encode\", \"bytes\": %zu, \"ids\": %zu, \"encode_cpu_s\": %.4f, \"bpe_ids\": %zu, "
              "\"bpe_uncached_cpu_s\": %.4f}\n",
              text.size(), ids, encode_s, bpe_ids, bpe_s);
  return ids == bpe_ids ? 0 : 1;
}
