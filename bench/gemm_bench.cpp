// W6: single-precision GEMM throughput at square sizes, one JSON line per size.
#include <cstdlib>

#include "bench_util.h"
#include "loom/loom.h"

int main(int argc, char** argv) {
  const int threads = argc > 1 ? std::atoi(argv[1]) : 2;
  loom::set_num_threads(threads);
  for (int64_t n : {512, 1024, 2048}) {
    loom::Tensor a = loom::randn({n, n}), b = loom::randn({n, n});
    loom::Tensor c;
    const double s = loom::bench::best_seconds(n >= 2048 ? 3 : 8, [&] { c = loom::mm(a, b); });
    std::printf("{\"bench\":\"gemm\",\"impl\":\"loom\",\"n\":%lld,\"gflops\":%.1f}\n", (long long)n, 2.0 * n * n * n / s / 1e9);
  }
}
