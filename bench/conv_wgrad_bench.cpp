// The direct weight gradient (backend/cpu/conv_wgrad_direct.cpp) against the im2col + GEMM path it replaces,
// through CpuBackend::conv2d_backward (dW and db only, as for a network's first layer), shape by shape. One
// thread unless THREADS is given, process CPU time (time spent descheduled on a shared machine does not count),
// best of REPS, the two interleaved rep by rep; ratio = im2col / direct.
//   conv_wgrad_bench [REPS [THREADS]]      one JSON line per shape
#include <algorithm>
#include <cstdio>
#include <cstdlib>
#include <ctime>
#include <random>
#include <string>

#include "loom/backend/cpu/conv_wgrad_direct.h"
#include "loom/backend/cpu/cpu_backend.h"
#include "loom/loom.h"
#include "bench_util.h"

using namespace loom;

namespace {

Tensor rand_tensor(Shape s, uint32_t seed) {
  Tensor t = make_tensor(std::move(s), DType::f32);
  std::mt19937 gen(seed);
  std::uniform_real_distribution<float> u(-1, 1);
  float* p = t.data<float>();
  for (int64_t i = 0; i < t.numel(); ++i) p[i] = u(gen);
  return t;
}

void bench_shape(const char* label, int64_t N, int64_t C, int64_t HW, int64_t OC, int64_t k, int64_t pad, int reps) {
  const int64_t O = HW + 2 * pad - k + 1;
  const ConvGeom g{.N = N, .C = C, .H = HW, .W = HW, .OC = OC, .KH = k, .KW = k, .OH = O, .OW = O, .ph = pad, .pw = pad};
  cpu::CpuBackend be;
  const Tensor x = rand_tensor({N, C, HW, HW}, 1), w = rand_tensor({OC, C, k, k}, 2), gy = rand_tensor({N, OC, O, O}, 3);
  Tensor dw = make_tensor(w.shape(), DType::f32), db = make_tensor({OC}, DType::f32);
  double best[2] = {1e30, 1e30};
  for (int r = 0; r < reps + 1; ++r)  // the first round warms up
    for (int direct = 1; direct >= 0; --direct) {
      cpu::set_direct_wgrad_enabled(direct == 1);
      const double t0 = bench::cpu_seconds();
      be.conv2d_backward(nullptr, &dw, &db, gy, x, w, g);
      if (r > 0) best[direct] = std::min(best[direct], bench::cpu_seconds() - t0);
    }
  cpu::set_direct_wgrad_enabled(true);
  std::printf("{\"bench\":\"conv_wgrad\",\"shape\":\"%s\",\"direct_applies\":%s,\"im2col_us\":%.1f,\"direct_us\":%.1f,"
              "\"ratio\":%.2f}\n",
              label, cpu::conv_direct_wgrad_applies(g) ? "true" : "false", best[0] * 1e6, best[1] * 1e6,
              best[0] / best[1]);
}

}  // namespace

int main(int argc, char** argv) {
  const int reps = argc > 1 ? std::max(1, std::atoi(argv[1])) : 30;
  set_num_threads(argc > 2 ? std::max(1, std::atoi(argv[2])) : 1);
  bench_shape("w2_conv1_64x1x28x28_to_32_3x3", 64, 1, 28, 32, 3, 0, reps);
  bench_shape("lenet_conv1_64x1x28x28_to_6_5x5_pad2", 64, 1, 28, 6, 5, 2, reps);
  bench_shape("lenet_conv2_64x6x14x14_to_16_5x5", 64, 6, 14, 16, 5, 0, reps);
  bench_shape("rgb_64x3x32x32_to_32_3x3_pad1", 64, 3, 32, 32, 3, 1, reps);
  bench_shape("64x4x13x13_to_32_3x3", 64, 4, 13, 32, 3, 0, reps);
  bench_shape("64x2x28x28_to_32_3x3", 64, 2, 28, 32, 3, 0, reps);
  bench_shape("64x4x13x13_to_64_3x3", 64, 4, 13, 64, 3, 0, reps);
  bench_shape("64x4x26x26_to_128_3x3", 64, 4, 26, 128, 3, 0, reps);
  bench_shape("64x8x13x13_to_16_3x3", 64, 8, 13, 16, 3, 0, reps);
  bench_shape("64x16x13x13_to_16_3x3", 64, 16, 13, 16, 3, 0, reps);
  bench_shape("w2_conv2_64x32x13x13_to_64_3x3", 64, 32, 13, 64, 3, 0, reps);
  return 0;
}
