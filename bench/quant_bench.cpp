// Quantized GPT decoding against f32 in one process, on the same random weights: prompt tokens/s (one prefill
// of PROMPT tokens) and generated tokens/s (single-token cached steps), for f32, Q8_0 and Q4_0, measured in
// interleaved rounds so a busy machine slows all three alike; prints one JSON object per format and the ratios.
//   quant_bench THREADS [gpt2|w3] [ROUNDS]     (gpt2: the 124M GPT-2 shape; w3: the 0.8M char GPT shape)
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <map>
#include <string>

#include "loom/loom.h"
#include "loom/models/gpt_quant.h"

using namespace loom;
using namespace loom::models;

namespace {

double now() { return std::chrono::duration<double>(std::chrono::steady_clock::now().time_since_epoch()).count(); }

struct Speed {
  double prompt_tps = 0, gen_tps = 0;
};

Speed measure(GPT& m, int64_t vocab, int64_t prompt, int64_t gen) {
  NoGradGuard g;
  manual_seed(7);
  Tensor ids = randint(0, vocab, {1, prompt});
  Speed s;
  auto st = m.start_decoding(1, prompt + gen + 1);
  double t0 = now();
  Tensor logits = m.decode_step(*st, ids);
  s.prompt_tps = double(prompt) / (now() - t0);
  t0 = now();
  for (int64_t i = 0; i < gen; ++i) {
    Tensor next = logits.argmax(-1).reshape({1, 1});
    logits = m.decode_step(*st, next);
  }
  s.gen_tps = double(gen) / (now() - t0);
  return s;
}

}  // namespace

int main(int argc, char** argv) {
  const int threads = argc > 1 ? std::atoi(argv[1]) : 2;
  const std::string shape = argc > 2 ? argv[2] : "gpt2";
  const int rounds = argc > 3 ? std::atoi(argv[3]) : 3;
  set_num_threads(threads);
  GPTConfig c = shape == "w3" ? GPTConfig{.vocab_size = 65, .n_positions = 256, .n_embd = 128, .n_layer = 4, .n_head = 4}
                              : GPTConfig{.vocab_size = 50257, .n_positions = 1024};
  const int64_t prompt = 128, gen = shape == "w3" ? 120 : 32;
  std::map<std::string, std::shared_ptr<GPT>> models;
  for (std::string f : {"f32", "q8_0", "q4_0"}) {
    manual_seed(1);  // the same random weights for all three
    auto m = std::make_shared<GPT>(c);
    m->eval();
    if (f != "f32") quantize_gpt(*m, quant::parse_format(f));
    models[f] = m;
  }
  std::map<std::string, Speed> best;
  for (int r = 0; r < rounds + 1; ++r)  // round 0 warms up (page faults, thread pool)
    for (std::string f : {"f32", "q8_0", "q4_0"}) {
      const Speed s = measure(*models[f], c.vocab_size, prompt, gen);
      if (r == 0) continue;
      best[f].prompt_tps = std::max(best[f].prompt_tps, s.prompt_tps);
      best[f].gen_tps = std::max(best[f].gen_tps, s.gen_tps);
    }
  for (std::string f : {"f32", "q8_0", "q4_0"})
    std::printf("{\"bench\": \"quant_decode\", \"shape\": \"%s\", \"format\": \"%s\", \"threads\": %d, \"prompt_tokens_per_s\": %.1f, "
                "\"generated_tokens_per_s\": %.1f, \"prompt_ratio_vs_f32\": %.2f, \"generated_ratio_vs_f32\": %.2f}\n",
                shape.c_str(), f.c_str(), threads, best[f].prompt_tps, best[f].gen_tps,
                best[f].prompt_tps / best["f32"].prompt_tps, best[f].gen_tps / best["f32"].gen_tps);
  return 0;
}
