// DP-SGD step cost against a normal step, side by side in one process: the seed MLP and CNN on Fashion-MNIST
// sized random batches. Prints one JSON object per model: seconds per step for a normal step (forward,
// backward), the ghost-clipped DP step (per-sample norms + clipped sum), materialised per-sample gradients,
// and the ratios (medians of back-to-back pairs).
//   build/bench/dp_bench [batch=256] [reps=10]
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <algorithm>
#include <vector>

#include "loom/loom.h"
#include "loom/privacy/dp_sgd.h"
#include "loom/privacy/per_sample.h"

using namespace loom;

template <class F>
double seconds(F&& f) {
  const auto t0 = std::chrono::steady_clock::now();
  f();
  return std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
}

double median(std::vector<double> v) {
  std::sort(v.begin(), v.end());
  return v[v.size() / 2];
}

int main(int argc, char** argv) {
  const int64_t batch = argc > 1 ? std::atoll(argv[1]) : 256;
  const int reps = argc > 2 ? std::atoi(argv[2]) : 10;
  for (const char* name : {"mlp", "cnn"}) {
    manual_seed(0);
    auto model = models::make_model(name, {});
    Tensor x = randn({batch, 1, 28, 28}), y = randint(0, 10, {batch});
    auto normal_step = [&] {
      model->zero_grad(true);
      cross_entropy((*model)(x), y).backward();
    };
    auto ghost_step = [&] {
      model->zero_grad(true);
      privacy::clipped_sum(*model, x, y, privacy::cross_entropy_sum(), 1.0);
    };
    auto materialised_step = [&] {
      model->zero_grad(true);
      auto ps = privacy::per_sample_grads(*model, x, y, privacy::cross_entropy_sum());
      privacy::clip_and_sum(ps, 1.0);
    };
    normal_step(), ghost_step(), materialised_step();  // warm-up
    // Interleaved repetitions, each ratio taken within one repetition: on a shared machine the load changes
    // from second to second, so only back-to-back pairs compare like with like. Medians over the repetitions.
    std::vector<double> tn, tg, tm, rg, rm;
    for (int r = 0; r < reps; ++r) {
      const double a = seconds(normal_step), b = seconds(ghost_step), m = seconds(materialised_step);
      const double a2 = seconds(normal_step);
      tn.push_back(std::min(a, a2)), tg.push_back(b), tm.push_back(m);
      rg.push_back(b / std::min(a, a2)), rm.push_back(m / std::min(a, a2));
    }
    const double normal = median(tn), ghost = median(tg), materialised = median(tm);
    std::printf("{\"bench\": \"dp_step\", \"model\": \"%s\", \"batch\": %lld, \"threads\": %d, \"normal_s\": %.5f, "
                "\"dp_ghost_s\": %.5f, \"dp_materialised_s\": %.5f, \"ghost_ratio\": %.2f, \"materialised_ratio\": %.2f}\n",
                name, (long long)batch, get_num_threads(), normal, ghost, materialised, median(rg), median(rm));
  }
}
