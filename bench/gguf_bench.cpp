// loom's side of bench/gguf_vs_llama.sh: loom and llama.cpp decoding the same GGUF files.
//   gguf_bench export DIR                         random GPT-2 124M (seed 1, GPT-2 vocabulary) -> DIR/gpt2_{f32,q8_0,q4_0}.gguf
//   gguf_bench run THREADS FILE IDS GEN ROUNDS     load FILE as `loom generate` does, then prefill IDS (comma-separated)
//                                                 and GEN greedy single-token steps; best of ROUNDS after a warm-up
// Prints one JSON object per line.
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <sstream>
#include <string>

#include "loom/export/gguf_export.h"
#include "loom/loom.h"
#include "loom/runtime/run.h"

using namespace loom;

namespace {

double now() { return std::chrono::duration<double>(std::chrono::steady_clock::now().time_since_epoch()).count(); }

int export_files(const std::string& dir) {
  std::filesystem::create_directories(dir);
  manual_seed(1);
  models::GPT gpt(models::GPTConfig{});  // GPT-2 124M: 12 layers, 768 wide, context 1024, vocabulary 50,257
  gpt.eval();
  const text::BPETokenizer tok = text::BPETokenizer::gpt2();
  for (const char* t : {"f32", "q8_0", "q4_0"}) {
    const std::string path = dir + "/gpt2_" + t + ".gguf";
    const double t0 = now();
    export_::save_gpt_gguf(gpt, tok, path, {.type = export_::parse_gguf_type(t)});
    std::printf("{\"bench\": \"gguf_export\", \"type\": \"%s\", \"bytes\": %llu, \"seconds\": %.2f}\n", t,
                (unsigned long long)std::filesystem::file_size(path), now() - t0);
  }
  return 0;
}

int run(int threads, const std::string& file, const std::string& ids_csv, int64_t gen, int rounds) {
  set_num_threads(threads);
  std::vector<int64_t> ids;
  std::stringstream ss(ids_csv);
  for (std::string x; std::getline(ss, x, ',');) ids.push_back(std::stoll(x));
  double t0 = now();
  const runtime::Run r = runtime::load_run(file);
  const double load_s = now() - t0;
  double best_prompt = 0, best_gen = 0;
  NoGradGuard ng;
  for (int round = 0; round <= rounds; ++round) {  // round 0 warms up (page faults, thread pool)
    auto st = r.lm->start_decoding(1, int64_t(ids.size()) + gen + 1);
    t0 = now();
    Tensor logits = r.lm->decode_step(*st, tensor(ids, {1, int64_t(ids.size())}));
    const double prompt_tps = double(ids.size()) / (now() - t0);
    t0 = now();
    for (int64_t i = 0; i < gen; ++i) logits = r.lm->decode_step(*st, logits.argmax(-1).reshape({1, 1}));
    const double gen_tps = double(gen) / (now() - t0);
    if (round == 0) continue;
    best_prompt = std::max(best_prompt, prompt_tps), best_gen = std::max(best_gen, gen_tps);
  }
  std::printf("{\"bench\": \"gguf_decode\", \"impl\": \"loom\", \"file\": \"%s\", \"threads\": %d, \"load_s\": %.2f, "
              "\"prompt_tokens_per_s\": %.1f, \"generated_tokens_per_s\": %.1f}\n",
              std::filesystem::path(file).filename().c_str(), threads, load_s, best_prompt, best_gen);
  return 0;
}

}  // namespace

int main(int argc, char** argv) {
  const std::string mode = argc > 1 ? argv[1] : "";
  if (mode == "export" && argc == 3) return export_files(argv[2]);
  if (mode == "run" && argc == 7) return run(std::atoi(argv[2]), argv[3], argv[4], std::atoll(argv[5]), std::atoi(argv[6]));
  std::fprintf(stderr, "usage: gguf_bench export DIR | gguf_bench run THREADS FILE IDS GEN ROUNDS\n");
  return 2;
}
