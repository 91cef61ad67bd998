// Dynamic int8 against f32 on a trained image run: the forward pass of one image and of a 256-image batch, and
// each layer's share, f32 and int8 interleaved in one process (best of `reps` per round, best round kept).
//   build/bench/int8_bench runs/cnn [threads=1] [reps=5] [rounds=3]
// Prints one JSON object per line: {"batch": 256, "layer": "all", "f32_ms": ..., "int8_ms": ..., "ratio": ...}.
#include <cstdio>
#include <cstdlib>
#include <string>
#include <vector>

#include "bench_util.h"
#include "loom/loom.h"
#include "loom/quant/quantize_dynamic.h"
#include "loom/runtime/classifier_run.h"

using namespace loom;

int main(int argc, char** argv) {
  if (argc < 2) {
    std::fprintf(stderr, "usage: int8_bench RUN_DIR [threads] [reps] [rounds]\n");
    return 2;
  }
  const int threads = argc > 2 ? std::atoi(argv[2]) : 1, reps = argc > 3 ? std::atoi(argv[3]) : 5;
  const int rounds = argc > 4 ? std::atoi(argv[4]) : 3;
  set_num_threads(threads);
  runtime::ClassifierRun f32 = runtime::load_classifier(argv[1]);
  runtime::ClassifierRun q8 = runtime::load_classifier(argv[1]);
  quant::quantize_dynamic(*q8.model);
  NoGradGuard g;
  const auto& s = f32.shape;
  for (int64_t batch : {int64_t(1), int64_t(256)}) {
    manual_seed(0);
    const Tensor x = rand({batch, s.channels, s.height, s.width});
    // Each layer's input as the float model sees it, so both models time the same work per layer.
    std::vector<Tensor> inputs{x};
    for (const auto& [name, m] : f32.model->named_children()) inputs.push_back((*m)(inputs.back()));
    const size_t L = f32.model->size();
    std::vector<double> best_f(L + 1, 1e30), best_q(L + 1, 1e30);
    for (int r = 0; r < rounds; ++r) {
      best_f[L] = std::min(best_f[L], bench::best_seconds(reps, [&] { (*f32.model)(x); }));
      best_q[L] = std::min(best_q[L], bench::best_seconds(reps, [&] { (*q8.model)(x); }));
      for (size_t i = 0; i < L; ++i) {
        best_f[i] = std::min(best_f[i], bench::best_seconds(reps, [&] { (*(*f32.model)[int64_t(i)])(inputs[i]); }));
        best_q[i] = std::min(best_q[i], bench::best_seconds(reps, [&] { (*(*q8.model)[int64_t(i)])(inputs[i]); }));
      }
    }
    for (size_t i = 0; i <= L; ++i) {
      const std::string layer = i == L ? "all" : std::to_string(i) + " " + (*q8.model)[int64_t(i)]->name();
      std::printf("{\"threads\": %d, \"batch\": %ld, \"layer\": \"%s\", \"f32_ms\": %.4f, \"int8_ms\": %.4f, "
                  "\"int8_over_f32\": %.3f}\n",
                  threads, long(batch), layer.c_str(), best_f[i] * 1e3, best_q[i] * 1e3, best_q[i] / best_f[i]);
    }
  }
  return 0;
}
