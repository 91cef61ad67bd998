// Elementwise and softmax throughput on 1M floats (the vec_math.h kernels), one JSON line per op.
//   build-x/bench/elementwise_bench 1      # threads; bench/elementwise_torch.py 1 prints the PyTorch side
// Softmax rows are 1024 wide (1024 rows), as attention and small-vocabulary heads see them.
#include <cstdlib>
#include <functional>
#include <string>

#include "bench_util.h"
#include "loom/loom.h"

using namespace loom;

int main(int argc, char** argv) {
  const int threads = argc > 1 ? std::atoi(argv[1]) : 1;
  set_num_threads(threads);
  manual_seed(0);
  Tensor x = randn({1 << 20}) * 3.0, x2 = x.view({1024, 1024});
  Tensor xg = x2.detach().requires_grad_(true), g = randn({1024, 1024});
  Tensor y;
  const std::pair<const char*, std::function<void()>> ops[] = {
      {"exp", [&] { y = exp(x); }},
      {"sigmoid", [&] { y = sigmoid(x); }},
      {"tanh", [&] { y = tanh(x); }},
      {"gelu_tanh", [&] { y = gelu(x, "tanh"); }},
      {"gelu_erf", [&] { y = gelu(x); }},
      {"softmax", [&] { y = softmax(x2, 1); }},
      {"log_softmax", [&] { y = log_softmax(x2, 1); }},
      {"softmax_fwd_bwd", [&] { softmax(xg, 1).backward(g); }},
      {"log_softmax_fwd_bwd", [&] { log_softmax(xg, 1).backward(g); }},
  };
  for (const auto& [name, f] : ops)
    std::printf("{\"bench\":\"elementwise\",\"impl\":\"loom\",\"op\":\"%s\",\"threads\":%d,\"us\":%.1f}\n", name, threads,
                bench::best_seconds(30, f) * 1e6);
}
