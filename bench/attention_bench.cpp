// Forward+backward time of scaled_dot_product_attention at the shapes of W3 (char GPT), W5 (GPT-2 small,
// context 64) and at long contexts, one JSON line per case; attention_torch.py times PyTorch 1.13's explicit
// matmul-softmax-matmul on the same shapes. "loom_composite" rows time loom's unfused path for comparison.
#include <cstdlib>
#include <string>

#include "bench_util.h"
#include "loom/loom.h"

using namespace loom;

struct Case {
  const char* name;
  int64_t B, H, T, D;
  bool causal;
};

static const Case kCases[] = {
    {"attn_w3_causal", 16, 4, 128, 32, true},   {"attn_w5_causal", 4, 12, 64, 64, true},
    {"attn_w5_full", 4, 12, 64, 64, false},     {"attn_t512_causal", 4, 12, 512, 64, true},
    {"attn_t1024_causal", 2, 12, 1024, 64, true},
};

static void report(const char* impl, const char* name, double fwd, double fb) {
  std::printf("{\"bench\":\"layer\",\"impl\":\"%s\",\"layer\":\"%s\",\"fwd_us\":%.1f,\"fwd_bwd_us\":%.1f}\n", impl, name,
              fwd * 1e6, fb * 1e6);
  std::fflush(stdout);
}

int main(int argc, char** argv) {
  set_num_threads(argc > 1 ? std::atoi(argv[1]) : 2);
  const bool composite = argc > 2 && std::string(argv[2]) == "composite";
  const std::string only = argc > 3 ? argv[3] : "";  // one case by name (for a profiler), else all
  manual_seed(0);
  for (const Case& c : kCases) {
    if (!only.empty() && only != c.name) continue;
    Tensor q = randn({c.B, c.H, c.T, c.D}, {.requires_grad = true}), k = randn({c.B, c.H, c.T, c.D}, {.requires_grad = true});
    Tensor v = randn({c.B, c.H, c.T, c.D}, {.requires_grad = true}), g = randn({c.B, c.H, c.T, c.D});
    const int reps = c.T >= 512 ? 3 : only.empty() ? 10 : 200;
    SDPAOptions o{.is_causal = c.causal};
    auto fused = [&] { return scaled_dot_product_attention(q, k, v, o); };
    auto comp = [&] { return attention_with_weights(q, k, v, o).first; };
    double f, fb;
    {
      NoGradGuard ng;
      f = bench::best_seconds(reps, fused);
    }
    fb = bench::best_seconds(reps, [&] { fused().backward(g); });
    report("loom", c.name, f, fb);
    if (composite) {
      {
        NoGradGuard ng;
        f = bench::best_seconds(reps, comp);
      }
      fb = bench::best_seconds(reps, [&] { comp().backward(g); });
      report("loom_composite", c.name, f, fb);
    }
  }
}
