// DP-SGD step cost against a normal step, side by side in one process: the seed MLP and CNN on Fashion-MNIST
// sized random batches. Prints one JSON object per model: seconds per step for a normal step (forward,
// backward), the ghost-clipped DP step (per-sample norms + clipped sum), materialised per-sample gradients,
// and the ratios.
//   build/bench/dp_bench [batch=256] [reps=10]
#include <chrono>
#include <cstdio>
#include <cstdlib>

#include "loom/loom.h"
#include "loom/privacy/dp_sgd.h"
#include "loom/privacy/per_sample.h"

using namespace loom;

template <class F>
double best_of(int reps, F&& f) {
  f();  // warm-up
  double best = 1e30;
  for (int r = 0; r < reps; ++r) {
    const auto t0 = std::chrono::steady_clock::now();
    f();
    best = std::min(best, std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count());
  }
  return best;
}

int main(int argc, char** argv) {
  const int64_t batch = argc > 1 ? std::atoll(argv[1]) : 256;
  const int reps = argc > 2 ? std::atoi(argv[2]) : 10;
  for (const char* name : {"mlp", "cnn"}) {
    manual_seed(0);
    auto model = models::make_model(name, {});
    Tensor x = randn({batch, 1, 28, 28}), y = randint(0, 10, {batch});
    const double normal = best_of(reps, [&] {
      model->zero_grad(true);
      cross_entropy((*model)(x), y).backward();
    });
    const double ghost = best_of(reps, [&] {
      model->zero_grad(true);
      privacy::clipped_sum(*model, x, y, privacy::cross_entropy_sum(), 1.0);
    });
    const double materialised = best_of(std::max(1, reps / 3), [&] {
      model->zero_grad(true);
      auto ps = privacy::per_sample_grads(*model, x, y, privacy::cross_entropy_sum());
      privacy::clip_and_sum(ps, 1.0);
    });
    std::printf("{\"bench\": \"dp_step\", \"model\": \"%s\", \"batch\": %lld, \"threads\": %d, \"normal_s\": %.5f, "
                "\"dp_ghost_s\": %.5f, \"dp_materialised_s\": %.5f, \"ghost_ratio\": %.2f, \"materialised_ratio\": %.2f}\n",
                name, (long long)batch, get_num_threads(), normal, ghost, materialised, ghost / normal,
                materialised / normal);
  }
}
