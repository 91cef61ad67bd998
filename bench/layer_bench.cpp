// Forward+backward time of Linear and Conv2d at the shapes of workloads W1 and W2 (batch 64), one JSON line
// per layer: the op's output plus input, weight and bias gradients, as a training step computes them.
#include <cstdlib>
#include <string>

#include "bench_util.h"
#include "loom/loom.h"

using namespace loom;

static void report(const std::string& name, double s) {
  std::printf("{\"bench\":\"layer\",\"impl\":\"loom\",\"layer\":\"%s\",\"fwd_bwd_us\":%.1f}\n", name.c_str(), s * 1e6);
}

int main(int argc, char** argv) {
  set_num_threads(argc > 1 ? std::atoi(argv[1]) : 2);
  manual_seed(0);
  if (argc > 2 && std::string(argv[2]) == "norm") {  // `layer_bench THREADS norm`: layer norm alone, fwd and fwd+bwd
    for (auto [rows, width] : {std::pair<int64_t, int64_t>{256, 768}, {2048, 128}, {6400, 256}}) {
      const std::string name = "layer_norm_" + std::to_string(rows) + "x" + std::to_string(width);
      Tensor x = randn({rows, width}, {.requires_grad = true}), g = randn({rows, width});
      Tensor lw = randn({width}, {.requires_grad = true}), lb = randn({width}, {.requires_grad = true});
      const double f = bench::best_seconds(50, [&] { NoGradGuard ng; layer_norm(x, {width}, lw, lb); });
      const double fb = bench::best_seconds(50, [&] { layer_norm(x, {width}, lw, lb).backward(g); });
      std::printf("{\"bench\":\"layer\",\"impl\":\"loom\",\"layer\":\"%s\",\"fwd_us\":%.1f,\"fwd_bwd_us\":%.1f}\n",
                  name.c_str(), f * 1e6, fb * 1e6);
    }
    return 0;
  }
  struct Lin { const char* name; int64_t in, out; };
  for (Lin l : {Lin{"linear_784_512", 784, 512}, Lin{"linear_512_256", 512, 256}, Lin{"linear_1600_64", 1600, 64},
                Lin{"linear_64_10", 64, 10}}) {
    Tensor x = randn({64, l.in}, {.requires_grad = true});
    Tensor w = randn({l.out, l.in}, {.requires_grad = true}), b = randn({l.out}, {.requires_grad = true});
    Tensor g = randn({64, l.out});
    report(l.name, bench::best_seconds(50, [&] { linear(x, w, b).backward(g); }));
  }
  struct Conv { const char* name; int64_t c, oc, hw; };
  for (Conv c : {Conv{"conv_1_32_28", 1, 32, 28}, Conv{"conv_32_64_13", 32, 64, 13}}) {
    Tensor x = randn({64, c.c, c.hw, c.hw}, {.requires_grad = c.c > 1});  // the first layer needs no input grad
    Tensor w = randn({c.oc, c.c, 3, 3}, {.requires_grad = true}), b = randn({c.oc}, {.requires_grad = true});
    Tensor g = randn({64, c.oc, c.hw - 2, c.hw - 2});
    report(c.name, bench::best_seconds(20, [&] { conv2d(x, w, b).backward(g); }));
  }
  // GPT training's work outside GEMM at W5's shape (4 x 64 tokens, 768 wide, vocab 50257) and W3's (2048 x 128).
  for (auto [tokens, width] : {std::pair<int64_t, int64_t>{256, 768}, {2048, 128}}) {
    const std::string sfx = "_" + std::to_string(tokens) + "x" + std::to_string(width);
    Tensor x = randn({tokens, width}, {.requires_grad = true}), g = randn({tokens, width});
    Tensor lw = randn({width}, {.requires_grad = true}), lb = randn({width}, {.requires_grad = true});
    report("layer_norm" + sfx, bench::best_seconds(20, [&] { layer_norm(x, {width}, lw, lb).backward(g); }));
    Tensor h = randn({tokens, 4 * width}, {.requires_grad = true}), gh = randn({tokens, 4 * width});
    report("gelu_tanh" + sfx, bench::best_seconds(20, [&] { gelu(h, "tanh").backward(gh); }));
    Tensor emb = randn({tokens == 256 ? 50257 : 96, width}, {.requires_grad = true});
    Tensor idx = randint(0, emb.shape()[0], {tokens});
    report("embedding" + sfx, bench::best_seconds(20, [&] { embedding(idx, emb).backward(g); }));
  }
  {
    Tensor logits = randn({256, 50257}, {.requires_grad = true});
    Tensor target = randint(0, 50257, {256});
    report("cross_entropy_256x50257", bench::best_seconds(10, [&] { cross_entropy(logits, target).backward(); }));
  }
  {
    std::vector<Tensor> params;
    for (int i = 0; i < 8; ++i) {
      params.push_back(randn({1024, 1024}, {.requires_grad = true}));
      params.back().set_grad(randn({1024, 1024}));
    }
    optim::AdamW opt(params);
    report("adamw_step_8M", bench::best_seconds(10, [&] { opt.step(); }));
  }
}
