// Timing helpers for the benchmarks: best-of-N wall time, so a noisy neighbour inflates nothing, and the
// process's CPU time, which leaves out the slices spent descheduled on a shared machine.
//   double s = loom::bench::best_seconds(5, [&] { y = matmul(a, b); });
//   double t0 = loom::bench::cpu_seconds();  ...  double used = loom::bench::cpu_seconds() - t0;
#pragma once
#include <algorithm>
#include <chrono>
#include <cstdio>
#include <ctime>
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

// CPU time of the whole process (all its threads), in seconds.
inline double cpu_seconds() {
  timespec ts;
  clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &ts);
  return double(ts.tv_sec) + 1e-9 * double(ts.tv_nsec);
}

}  // namespace loom::bench
