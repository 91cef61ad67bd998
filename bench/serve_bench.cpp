// `loom serve`'s batching targets, measured on the engine the server runs (runtime::BatchEngine), with
// random weights at the W3 char-GPT shape and GPT-2 124M's shape (/work/shared/WORKLOADS.md):
//   - aggregate generated tokens/s with 8 concurrent streams vs 1 stream (target >= 3x);
//   - time to first token of a 128-token prompt while 8 streams decode vs idle (target <= 2x).
// One JSON line per shape. Usage: serve_bench [w3|gpt2|all|micro] [new_tokens] [reps]  (threads: OMP_NUM_THREADS / LOOM_THREADS)
#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstring>
#include <string>
#include <thread>

#include "loom/loom.h"

using namespace loom;
using Clock = std::chrono::steady_clock;

namespace {

double secs(Clock::time_point t) { return std::chrono::duration<double>(Clock::now() - t).count(); }

std::vector<int64_t> prompt(int64_t n, int64_t V, int64_t salt) {
  std::vector<int64_t> p;
  for (int64_t i = 0; i < n; ++i) p.push_back((i * 31 + salt * 17 + 1) % V);
  return p;
}

// Aggregate tokens/s of `streams` requests of `new_tokens` each, all submitted at once.
double throughput(runtime::BatchEngine& e, int streams, int64_t new_tokens, int64_t V) {
  std::vector<std::shared_ptr<runtime::BatchEngine::Handle>> hs;
  const auto t0 = Clock::now();
  for (int i = 0; i < streams; ++i)
    hs.push_back(e.submit({.prompt = prompt(16, V, i), .options = {.max_new_tokens = new_tokens, .sampling = {.temperature = 0}, .stop_at_eot = false}}));
  int64_t n = 0;
  for (auto& h : hs) n += int64_t(h->wait().tokens.size());
  return double(n) / secs(t0);
}

// TTFT of a 128-token prompt; with `load` streams decoding (long requests) while it arrives.
double ttft(runtime::BatchEngine& e, int load, int64_t V) {
  std::vector<std::shared_ptr<runtime::BatchEngine::Handle>> bg;
  for (int i = 0; i < load; ++i)
    bg.push_back(e.submit({.prompt = prompt(16, V, 100 + i), .options = {.max_new_tokens = 100000, .stop_at_eot = false}}));
  if (load > 0)  // wait until they all decode
    while (e.stats().busy < load || std::any_of(bg.begin(), bg.end(), [](auto& h) { return h->first_token_seconds() < 0; }))
      std::this_thread::sleep_for(std::chrono::milliseconds(1));
  double best = 1e9;
  for (int rep = 0; rep < 3; ++rep) {
    auto h = e.submit({.prompt = prompt(128, V, 7 + rep), .options = {.max_new_tokens = 1, .stop_at_eot = false}});
    h->wait();
    best = std::min(best, h->first_token_seconds());
  }
  for (auto& h : bg) h->cancel();
  for (auto& h : bg) h->wait();
  return best;
}

void run(const std::string& name, const models::GPTConfig& c, int64_t new_tokens, int reps) {
  manual_seed(0);
  auto gpt = std::make_shared<models::GPT>(c);
  gpt->eval();
  runtime::Run run;
  run.lm = gpt;
  // The text side costs as in the server: GPT-2's BPE for the GPT-2 shape, 65 characters for W3.
  std::string chars;
  for (int i = 0; i < 65; ++i) chars += char(' ' + i);
  run.tokenizer = c.vocab_size == 65 ? text::make_tokenizer("char", chars) : text::make_tokenizer("gpt2");
  runtime::BatchEngine e(run, {.slots = 9, .max_queue = 16, .prefill_chunk = 64, .max_len = 512});
  throughput(e, 1, 4, c.vocab_size);  // warm-up
  // Best of `reps`, 1 and 8 streams alternating: on a shared machine the other load only ever slows a run down.
  double one = 0, eight = 0;
  for (int r = 0; r < reps; ++r) {
    one = std::max(one, throughput(e, 1, new_tokens, c.vocab_size));
    eight = std::max(eight, throughput(e, 8, new_tokens, c.vocab_size));
  }
  const double idle = ttft(e, 0, c.vocab_size);
  const double loaded = ttft(e, 8, c.vocab_size);
  std::printf("{\"bench\":\"serve\",\"shape\":\"%s\",\"threads\":%d,\"new_tokens\":%lld,\"tokens_per_s_1\":%.1f,"
              "\"reps\":%d,\"tokens_per_s_8\":%.1f,\"speedup_8_vs_1\":%.2f,\"ttft_128_idle_s\":%.4f,\"ttft_128_loaded_s\":%.4f,"
              "\"ttft_ratio\":%.2f}\n",
              name.c_str(), get_num_threads(), (long long)new_tokens, one, reps, eight, eight / one, idle, loaded, loaded / idle);
  std::fflush(stdout);
}

}  // namespace

// decode_slots alone: seconds per step with 1 row and with 8 rows (no engine, no sampling).
void micro(const models::GPTConfig& c) {
  manual_seed(0);
  models::GPT m(c);
  m.eval();
  NoGradGuard ng;
  auto st = m.start_slots(8, 256);
  for (int64_t r = 0; r < 8; ++r) m.decode_slots(*st, {&r, 1}, tensor(prompt(16 + r, c.vocab_size, r), {1, 16 + r}));
  for (int64_t n : {1, 8, 1, 8}) {
    std::vector<int64_t> rows(static_cast<size_t>(n)), ids(static_cast<size_t>(n), 5);
    for (int64_t i = 0; i < n; ++i) rows[size_t(i)] = i;
    const auto t0 = Clock::now();
    for (int s = 0; s < 5; ++s) m.decode_slots(*st, rows, tensor(ids, {n, 1}));
    std::printf("{\"micro\":\"decode_slots\",\"rows\":%lld,\"s_per_step\":%.4f}\n", (long long)n, secs(t0) / 5);
    std::fflush(stdout);
  }
}

int main(int argc, char** argv) {
  const std::string which = argc > 1 ? argv[1] : "all";
  if (which == "micro") {
    micro({.vocab_size = 50257, .n_positions = 1024, .n_embd = 768, .n_layer = 12, .n_head = 12});
    return 0;
  }
  const int64_t n = argc > 2 ? std::atoll(argv[2]) : 64;
  const int reps = argc > 3 ? std::atoi(argv[3]) : 3;
  if (which == "w3" || which == "all")
    run("W3-char-GPT", {.vocab_size = 65, .n_positions = 512, .n_embd = 128, .n_layer = 4, .n_head = 4, .tie_word_embeddings = false}, n, reps);
  if (which == "gpt2" || which == "all")
    run("GPT-2-124M", {.vocab_size = 50257, .n_positions = 1024, .n_embd = 768, .n_layer = 12, .n_head = 12}, n, reps);
  return 0;
}
