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
}
