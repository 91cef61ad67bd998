// GPT at the W3 / W5 shapes (/work/shared/WORKLOADS.md): train tokens/s (forward + backward + AdamW),
// validation loss, generated tokens/s with the KV cache, and the cache's speed-up over recomputing the
// context. One JSON object per line; bench/gpt_torch.sh runs PyTorch's scripts beside it.
//   gpt_bench THREADS w3 KJV_TEXT [STEPS]   (char-level GPT on the KJV text, as bench/torch_ref/gpt_char.py)
//   gpt_bench THREADS w5 [STEPS]            (GPT-2 small shape, random tokens, as gpt2_shape.py)
//   gpt_bench THREADS decode                (ms per token at 512 tokens: cached step vs full recompute)
#include <algorithm>
#include <chrono>
#include <cstdlib>
#include <cstdio>
#include <fstream>
#include <set>
#include <sstream>
#include <string>

#include "bench_util.h"
#include "loom/loom.h"
#include "loom/models/gpt.h"

using namespace loom;
using loom::models::GPT;
using loom::models::GPTConfig;

namespace {

// GPT_CKPT=1 turns activation checkpointing on (compute traded for memory: compare peak_rss_kb).
bool checkpointing() { return std::getenv("GPT_CKPT") && std::string(std::getenv("GPT_CKPT")) == "1"; }

// GPT_PRECISION=bf16: forward and loss under bf16 autocast (matrix products on bf16 operands with f32
// accumulation, their backward likewise; everything else f32), as `loom train-lm --precision bf16`.
DType precision() {
  static const DType p = [] {
    const char* v = std::getenv("GPT_PRECISION");
    const std::string s = v ? v : "f32";
    LOOM_CHECK(s == "f32" || s == "bf16", "GPT_PRECISION=", s, ": expected f32 or bf16");
    return s == "bf16" ? DType::bf16 : DType::f32;
  }();
  return p;
}

double now() { return std::chrono::duration<double>(std::chrono::steady_clock::now().time_since_epoch()).count(); }

long peak_rss_kb() {
  std::ifstream f("/proc/self/status");
  std::string line;
  while (std::getline(f, line))
    if (line.rfind("VmHWM:", 0) == 0) return std::stol(line.substr(6));
  return 0;
}

// FLOPs of one training token: 6 per matmul weight (forward 2, backward 4) plus attention's two
// (T x T x D) products per layer and head, forward and backward (causal masking not subtracted, as the
// usual MFU formula does).
double train_flops_per_token(const GPTConfig& c, int64_t T) {
  const double E = double(c.n_embd), L = double(c.n_layer);
  const double matmul_params = L * (E * 3 * E + E * E + 2 * E * double(c.inner())) + E * double(c.vocab_size);
  return 6 * matmul_params + 12 * L * double(T) * E;
}

// Batches of (x, y) windows at random offsets, as the torch script's batch().
std::pair<Tensor, Tensor> batch(const std::vector<int64_t>& data, int64_t lo, int64_t hi, int64_t B, int64_t T,
                                Generator& g) {
  Tensor x = make_tensor({B, T}, DType::i64), y = make_tensor({B, T}, DType::i64);
  for (int64_t b = 0; b < B; ++b) {
    const int64_t o = lo + int64_t(g.next_u64() % uint64_t(hi - lo - T - 1));
    std::copy(data.begin() + o, data.begin() + o + T, x.data<int64_t>() + b * T);
    std::copy(data.begin() + o + 1, data.begin() + o + T + 1, y.data<int64_t>() + b * T);
  }
  return {x, y};
}

// Greedy-free sampling from softmax(logits) (B = 1), so the cached generation does real work per token.
int64_t sample(const Tensor& logits, Generator& g) {
  Tensor p = logits.softmax(-1).contiguous();
  const float* q = p.data<float>();
  double u = g.next_double(), acc = 0;
  for (int64_t i = 0; i < p.numel(); ++i)
    if ((acc += q[i]) >= u) return i;
  return p.numel() - 1;
}

// Tokens/s of generating n tokens after a one-token prompt, with the cache.
double generate_tokens_per_s(GPT& m, int64_t n, Generator& g) {
  NoGradGuard ng;
  m.eval();
  const double t0 = now();
  auto st = m.start_decoding(1, n + 1);
  Tensor idx = zeros({1, 1}, {.dtype = DType::i64});
  for (int64_t i = 0; i < n; ++i) {
    const int64_t next = sample(m.decode_step(*st, idx), g);
    idx = full({1, 1}, double(next), {.dtype = DType::i64});
  }
  return double(n) / (now() - t0);
}

void train(const std::string& workload, GPT& m, int64_t B, int64_t T, int steps, double lr,
           const std::vector<int64_t>& data, int64_t split, Generator& g) {
  optim::AdamW opt(m.parameters(), {.lr = lr});
  const int64_t V = m.cfg.vocab_size;
  double t0 = now(), first_step = 0, loss_v = 0;
  for (int it = 1; it <= steps; ++it) {
    auto [x, y] = batch(data, 0, split, B, T, g);
    Tensor loss;
    {
      AutocastGuard ac(precision());
      loss = cross_entropy(m(x).view({-1, V}), y.view({-1}));
    }
    opt.zero_grad(true);
    loss.backward();
    opt.step();
    loss_v = loss.item();
    if (it == 1) first_step = now() - t0;  // warm-up (page faults, BLAS buffers): excluded below
    if (it % 100 == 0 || it == steps)
      std::fprintf(stderr, "%s step %d loss %.4f tokens_per_s %.0f\n", workload.c_str(), it, loss_v,
                   double(it * B * T) / (now() - t0));
  }
  const double dt = now() - t0 - first_step;
  const double tps = steps > 1 ? double((steps - 1) * B * T) / dt : double(B * T) / first_step;
  std::printf("{\"bench\":\"gpt\",\"impl\":\"loom\",\"workload\":\"%s\",\"precision\":\"%s\",\"steps\":%d,\"train_loss\":%.4f,"
              "\"train_tokens_per_s\":%.1f,\"model_gflops\":%.2f,\"peak_rss_kb\":%ld}\n",
              workload.c_str(), precision() == DType::bf16 ? "bf16" : "f32", steps, loss_v, tps, tps * train_flops_per_token(m.cfg, T) / 1e9, peak_rss_kb());
  std::fflush(stdout);
}

void run_w3(const std::string& path, int steps) {
  std::ifstream f(path, std::ios::binary);
  LOOM_CHECK(f.good(), "gpt_bench: cannot read ", path);
  std::stringstream ss;
  ss << f.rdbuf();
  const std::string text = ss.str();
  std::set<unsigned char> chars(text.begin(), text.end());
  std::vector<int64_t> stoi(256, 0), data;
  int64_t V = 0;
  for (unsigned char c : chars) stoi[c] = V++;
  data.reserve(text.size());
  for (unsigned char c : text) data.push_back(stoi[c]);
  const int64_t n = int64_t(0.9 * double(data.size())), B = 16, T = 128;
  // The torch script's model: separate head, no dropout; exact GELU like its nn.GELU() unless
  // GPT_W3_ACT names another (gelu_new: GPT-2's tanh form).
  const char* act = std::getenv("GPT_W3_ACT");
  const std::string W3_ACT = act ? act : "gelu";
  // initializer_range 0.05: about the std of PyTorch's default Linear init at width 128 (U(+-1/sqrt(128))),
  // which the torch script's model starts from; GPT-2's 0.02 learns slower in the first 300 steps
  // (measured val loss 2.256 vs 2.045). GPT_W3_INIT overrides it.
  const char* init = std::getenv("GPT_W3_INIT");
  manual_seed(0);
  GPT m({.vocab_size = V, .n_positions = T, .n_embd = 128, .n_layer = 4, .n_head = 4,
         .activation_function = W3_ACT, .tie_word_embeddings = false,
         .initializer_range = init ? std::atof(init) : 0.05, .activation_checkpointing = checkpointing()});
  Generator g(0);
  train("W3", m, B, T, steps, 1e-3, data, n, g);
  m.eval();
  double vl = 0;
  {
    NoGradGuard ng;
    for (int i = 0; i < 20; ++i) {
      auto [x, y] = batch(data, n, int64_t(data.size()), B, T, g);
      vl += cross_entropy(m(x).view({-1, V}), y.view({-1})).item() / 20;
    }
  }
  std::printf("{\"bench\":\"gpt\",\"impl\":\"loom\",\"workload\":\"W3\",\"val_loss\":%.4f,\"gen_tokens_per_s\":%.1f}\n",
              vl, generate_tokens_per_s(m, T - 1, g));
}

void run_w5(int steps) {
  const int64_t V = 50257, B = 4, T = 64;
  manual_seed(0);
  GPT m({.vocab_size = V, .n_positions = 1024, .n_embd = 768, .n_layer = 12, .n_head = 12,
         .activation_checkpointing = checkpointing()});
  Generator g(0);
  std::vector<int64_t> data(100000);
  for (auto& v : data) v = int64_t(g.next_u64() % uint64_t(V));
  train("W5", m, B, T, steps, 3e-4, data, int64_t(data.size()), g);
  m.eval();
  NoGradGuard ng;
  Tensor prompt = randint(0, V, {1, 128});
  const double prefill = bench::best_seconds(2, [&] { m(prompt); });
  std::printf("{\"bench\":\"gpt\",\"impl\":\"loom\",\"workload\":\"W5\",\"prefill_tokens_per_s\":%.1f,"
              "\"gen_tokens_per_s\":%.1f}\n",
              128 / prefill, generate_tokens_per_s(m, 64, g));
}

// Per-token cost at a 512-token context: one cached decode step vs a full forward over the 512 tokens
// (what generation without a cache pays for each new token).
void run_decode(const std::string& name, const GPTConfig& c) {
  manual_seed(0);
  GPT m(c);
  m.eval();
  NoGradGuard ng;
  const int64_t L = 512;
  Tensor ctx = randint(0, c.vocab_size, {1, L});
  const double recompute = bench::best_seconds(3, [&] { m(ctx); });
  auto st = m.start_decoding(1, L);
  m.decode_step(*st, ctx.narrow(1, 0, L - 32));
  Tensor tok = ctx.narrow(1, L - 1, 1);
  const double t0 = now();
  for (int i = 0; i < 32; ++i) m.decode_step(*st, tok);  // positions 480..511
  const double cached = (now() - t0) / 32;
  std::printf("{\"bench\":\"gpt_decode\",\"impl\":\"loom\",\"shape\":\"%s\",\"context\":%lld,"
              "\"cached_ms_per_token\":%.3f,\"recompute_ms_per_token\":%.3f,\"speedup\":%.1f}\n",
              name.c_str(), (long long)L, cached * 1e3, recompute * 1e3, recompute / cached);
  std::fflush(stdout);
}

}  // namespace

int main(int argc, char** argv) {
  if (argc < 3) {
    std::fprintf(stderr, "usage: gpt_bench THREADS w3 TEXT [STEPS] | w5 [STEPS] | decode\n");
    return 2;
  }
  set_num_threads(std::atoi(argv[1]));
  const std::string mode = argv[2];
  try {
    if (mode == "w3") {
      LOOM_CHECK(argc >= 4, "gpt_bench w3: give the KJV text file");
      run_w3(argv[3], argc >= 5 ? std::atoi(argv[4]) : 300);
    } else if (mode == "w5") {
      run_w5(argc >= 4 ? std::atoi(argv[3]) : 4);
    } else if (mode == "decode") {
      run_decode("W3-width", {.vocab_size = 65, .n_positions = 512, .n_embd = 128, .n_layer = 4, .n_head = 4});
      run_decode("GPT-2-small", {.vocab_size = 50257, .n_positions = 1024, .n_embd = 768, .n_layer = 12, .n_head = 12});
    } else {
      LOOM_FAIL("gpt_bench: unknown mode '", mode, "' (w3, w5, decode)");
    }
  } catch (const std::exception& e) {
    std::fprintf(stderr, "%s\n", e.what());
    return 1;
  }
}
