// `loom serve`'s batching targets, measured on the engine the server runs (runtime::BatchEngine), with
// random weights at the W3 char-GPT shape and GPT-2 124M's shape (/work/shared/WORKLOADS.md):
//   - aggregate generated tokens/s with 8 concurrent streams vs 1 stream (target >= 3x);
//   - time to first token of a 128-token prompt while 8 streams decode vs idle (target <= 2x);
//   - for reference, one request at a time through GenerationSession (`loom generate`'s path) on the main thread.
// One JSON line per shape. Usage: serve_bench [w3|gpt2|all|micro|skinny] [new_tokens] [reps]
// (threads: OMP_NUM_THREADS / LOOM_THREADS). `micro`: decode_slots alone, 1 vs 8 rows; `skinny`: the linear
// layers of a GPT-2 decode step at 1, 4, 8, 16 rows through loom's GEMM vs sgemm (what 5+ rows took before).
#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstring>
#include <string>
#include <thread>

#include <cblas.h>

#include "bench_util.h"
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
  runtime::GenerationSession session(run);  // `loom generate`'s path: one request at a time, on this thread
  throughput(e, 1, 4, c.vocab_size);  // warm-up
  // Best of `reps`, 1 and 8 streams and the session alternating: on a shared machine the other load only ever
  // slows a run down.
  double one = 0, eight = 0, alone = 0;
  for (int r = 0; r < reps; ++r) {
    one = std::max(one, throughput(e, 1, new_tokens, c.vocab_size));
    eight = std::max(eight, throughput(e, 8, new_tokens, c.vocab_size));
    const auto t0 = Clock::now();
    const auto res = session.generate(prompt(16, c.vocab_size, 0), {.max_new_tokens = new_tokens, .sampling = {.temperature = 0}, .stop_at_eot = false});
    alone = std::max(alone, double(res.tokens.size()) / secs(t0));
  }
  const double idle = ttft(e, 0, c.vocab_size);
  const double loaded = ttft(e, 8, c.vocab_size);
  std::printf("{\"bench\":\"serve\",\"shape\":\"%s\",\"threads\":%d,\"new_tokens\":%lld,\"tokens_per_s_session\":%.1f,"
              "\"tokens_per_s_1\":%.1f,\"reps\":%d,\"tokens_per_s_8\":%.1f,\"speedup_8_vs_1\":%.2f,\"ttft_128_idle_s\":%.4f,"
              "\"ttft_128_loaded_s\":%.4f,\"ttft_ratio\":%.2f}\n",
              name.c_str(), get_num_threads(), (long long)new_tokens, alone, one, reps, eight, eight / one, idle, loaded,
              loaded / idle);
  std::fflush(stdout);
}

}  // namespace

// decode_slots alone: seconds per step with 1 row and with 8 rows (no engine, no sampling).
void micro(const models::GPTConfig& c) {
  manual_seed(0);
  models::GPT m(c);
  m.eval();
  NoGradGuard ng;
  auto st = m.start_slots(8, 512);
  for (int64_t r = 0; r < 8; ++r) m.decode_slots(*st, {&r, 1}, tensor(prompt(16 + r, c.vocab_size, r), {1, 16 + r}));
  for (int64_t n : {1, 8, 1, 8, 1, 8}) {
    std::vector<int64_t> rows(static_cast<size_t>(n)), ids(static_cast<size_t>(n), 5);
    for (int64_t i = 0; i < n; ++i) rows[size_t(i)] = i;
    const auto t0 = Clock::now();
    const int steps = c.n_layer * c.n_embd >= 4096 ? 5 : 50;
    for (int s = 0; s < steps; ++s) m.decode_slots(*st, rows, tensor(ids, {n, 1}));
    std::printf("{\"micro\":\"decode_slots\",\"rows\":%lld,\"s_per_step\":%.5f}\n", (long long)n, secs(t0) / steps);
    std::fflush(stdout);
  }
}

// The products of a decode step (x (rows, in) times W^T) for GPT-2's shapes: GFLOP/s of loom's GEMM entry
// (the skinny kernel for 2..16 rows, sgemv for 1) next to plain sgemm, interleaved, best of 5.
void skinny() {
  struct Shape { const char* name; int64_t in, out; };
  for (const Shape& sh : {Shape{"qkv", 768, 2304}, Shape{"mlp_fc", 768, 3072}, Shape{"mlp_proj", 3072, 768},
                          Shape{"lm_head", 768, 50257}}) {
    Tensor w = randn({sh.out, sh.in});
    for (int64_t rows : {1, 4, 8, 16}) {
      Tensor x = randn({rows, sh.in}), y = zeros({rows, sh.out});
      const float *px = x.data<float>(), *pw = w.data<float>();
      float* py = y.data<float>();
      const double flops = 2.0 * double(rows * sh.in * sh.out);
      double s_loom = 1e30, s_blas = 1e30;
      for (int r = 0; r < 5; ++r) {
        s_loom = std::min(s_loom, bench::best_seconds(1, [&] {
          backend_for(x).gemm(false, true, rows, sh.out, sh.in, 1.0, px, sh.in, pw, sh.in, 0.0, py, sh.out, DType::f32);
        }));
        s_blas = std::min(s_blas, bench::best_seconds(1, [&] {
          cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, int(rows), int(sh.out), int(sh.in), 1.0f, px, int(sh.in),
                      pw, int(sh.in), 0.0f, py, int(sh.out));
        }));
      }
      std::printf("{\"micro\":\"decode_gemm\",\"shape\":\"%s\",\"rows\":%lld,\"loom_ms\":%.3f,\"loom_gflops\":%.1f,"
                  "\"sgemm_ms\":%.3f,\"sgemm_gflops\":%.1f}\n",
                  sh.name, (long long)rows, s_loom * 1e3, flops / s_loom / 1e9, s_blas * 1e3, flops / s_blas / 1e9);
      std::fflush(stdout);
    }
  }
}

// slot_attention alone at a decode step's shape: n rows of H heads over their own slots of `len` keys.
void micro_attention(int64_t H, int64_t D, int64_t len) {
  NoGradGuard ng;
  Tensor kc = randn({8, H, 512, D}), vc = randn({8, H, 512, D});
  for (int64_t n : {1, 8}) {
    Tensor q = randn({n, H, 1, D});
    std::vector<int64_t> rows(static_cast<size_t>(n)), lens(static_cast<size_t>(n), len);
    for (int64_t i = 0; i < n; ++i) rows[size_t(i)] = 7 - i;
    const double s = bench::best_seconds(20, [&] { slot_attention(q, kc, vc, rows, lens); });
    std::printf("{\"micro\":\"slot_attention\",\"H\":%lld,\"D\":%lld,\"len\":%lld,\"rows\":%lld,\"us\":%.1f}\n",
                (long long)H, (long long)D, (long long)len, (long long)n, s * 1e6);
  }
}

int main(int argc, char** argv) {
  const std::string which = argc > 1 ? argv[1] : "all";
  if (which == "skinny") {
    skinny();
    return 0;
  }
  if (which == "micro") {  // micro [gpt2|w3]
    micro_attention(4, 32, 200);
    micro_attention(12, 64, 200);
    if (argc > 2 && std::string(argv[2]) == "w3")
      micro({.vocab_size = 65, .n_positions = 512, .n_embd = 128, .n_layer = 4, .n_head = 4, .tie_word_embeddings = false});
    else
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
