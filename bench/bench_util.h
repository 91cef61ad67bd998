// Timing helpers for the benchmarks: best-of-N wall time, so a noisy neighbour inflates nothing.
//   double s = loom::bench::best_seconds(5, [&] { y = matmul(a, b); });
#pragma once
#include <algorithm>
#include <chrono>
#include <cstdio>
#include <limits>

namespace loom::bench {

template <class F>
double best_seconds(int reps, F&& f) {
  f();  // warm-up: page faults, thread pool start, BLAS buffers
  double best = std::numeric_limits<double>::infinity();
  for (int i = 0; i < reps; ++i) {
    auto t0 = std::chrono::steady_clock::now();
    f();
    best = std::min(best, std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count());
  }
  return best;
}

}  // namespace loom::bench
