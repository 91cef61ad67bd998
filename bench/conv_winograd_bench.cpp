// Winograd F(2x2, 3x3) (backend/cpu/conv_winograd.cpp) against what the backend runs without it, kernel by
// kernel: the forward against the direct kernel (conv_direct.cpp, where it applies; ratio = direct / Winograd)
// and the input gradient against im2col + GEMM (ratio = backend / Winograd). The backend columns time
// CpuBackend::conv2d / conv2d_backward (dx only), i.e. whatever conv.cpp dispatches to: run this on a build
// whose dispatch does not pick Winograd to see im2col, and with LOOM_ISA=baseline for the plain paths. One thread, process CPU time (the time slices
// spent descheduled on a shared machine do not count), best of REPS, the contenders interleaved rep by rep.
//   conv_winograd_bench [REPS [SHAPE]]      one JSON line per (shape, pass); SHAPE: only labels containing it
#include <algorithm>
#include <cstdio>
#include <cstdlib>
#include <ctime>
#include <random>
#include <string>
#include <vector>

#include "loom/backend/cpu/conv_direct.h"
#include "loom/backend/cpu/conv_winograd.h"
#include "loom/backend/cpu/cpu_backend.h"
#include "loom/loom.h"
#include "bench_util.h"

using namespace loom;

namespace {

template <class F>
double once(F&& f) {
  const double t0 = bench::cpu_seconds();
  f();
  return bench::cpu_seconds() - t0;
}

std::vector<float> randv(int64_t n, uint32_t seed) {
  std::mt19937 gen(seed);
  std::uniform_real_distribution<float> u(-1, 1);
  std::vector<float> v(static_cast<size_t>(n));
  for (float& x : v) x = u(gen);
  return v;
}

std::string g_only;  // SHAPE argument: run only the shapes whose label contains it

void bench_shape(const std::string& label, const ConvGeom& g, int reps) {
  if (label.find(g_only) == std::string::npos) return;
  const auto x = randv(g.N * g.C * g.H * g.W, 1), w = randv(g.OC * g.C * 9, 2), b = randv(g.OC, 3);
  const auto gy = randv(g.N * g.OC * g.OH * g.OW, 4);
  std::vector<float> y(size_t(g.N * g.OC * g.OH * g.OW)), dx(x.size());
  cpu::CpuBackend be;
  Tensor tx = make_tensor({g.N, g.C, g.H, g.W}, DType::f32), tw = make_tensor({g.OC, g.C, 3, 3}, DType::f32);
  Tensor tg = make_tensor({g.N, g.OC, g.OH, g.OW}, DType::f32), tdx = make_tensor(tx.shape(), DType::f32);
  std::copy(x.begin(), x.end(), tx.data<float>());
  std::copy(w.begin(), w.end(), tw.data<float>());
  std::copy(gy.begin(), gy.end(), tg.data<float>());
  const bool direct = cpu::conv_direct_applies(g);
  Tensor ty = make_tensor({g.N, g.OC, g.OH, g.OW}, DType::f32), tb = make_tensor({g.OC}, DType::f32);
  std::copy(b.begin(), b.end(), tb.data<float>());
  double fd = 1e30, fb = 1e30, fw = 1e30, bd = 1e30, bw = 1e30;
  for (int r = 0; r < reps + 1; ++r) {  // the first round warms up
    const double a = direct ? once([&] { cpu::conv2d_direct(y.data(), x.data(), w.data(), b.data(), g); }) : 0;
    const double f = once([&] { be.conv2d(ty, tx, tw, &tb, g); });
    const double c = once([&] { cpu::conv2d_winograd(y.data(), x.data(), w.data(), b.data(), g); });
    const double d = once([&] { be.conv2d_backward(&tdx, nullptr, nullptr, tg, tx, tw, g); });
    const double e = once([&] { cpu::conv2d_winograd_input_grad(dx.data(), gy.data(), w.data(), g); });
    if (r == 0) continue;
    fd = std::min(fd, a), fb = std::min(fb, f), fw = std::min(fw, c), bd = std::min(bd, d), bw = std::min(bw, e);
  }
  std::printf("{\"bench\":\"conv_winograd\",\"shape\":\"%s\",\"pass\":\"forward\",\"direct_us\":%.1f,"
              "\"backend_us\":%.1f,\"winograd_us\":%.1f,\"ratio\":%.2f}\n",
              label.c_str(), fd * 1e6, fb * 1e6, fw * 1e6, direct ? fd / fw : 0.0);
  std::printf("{\"bench\":\"conv_winograd\",\"shape\":\"%s\",\"pass\":\"input_grad\",\"backend_us\":%.1f,"
              "\"winograd_us\":%.1f,\"ratio\":%.2f}\n",
              label.c_str(), bd * 1e6, bw * 1e6, bd / bw);
}

ConvGeom geom(int64_t N, int64_t C, int64_t H, int64_t W, int64_t OC, int64_t pad) {
  return ConvGeom{.N = N, .C = C, .H = H, .W = W, .OC = OC, .KH = 3, .KW = 3, .OH = H + 2 * pad - 2,
                  .OW = W + 2 * pad - 2, .ph = pad, .pw = pad};
}

}  // namespace

int main(int argc, char** argv) {
  const int reps = argc > 1 ? std::max(1, std::atoi(argv[1])) : 30;
  if (argc > 2) g_only = argv[2];
  set_num_threads(1);
  bench_shape("w2_conv2_64x32x13x13_to_64", geom(64, 32, 13, 13, 64, 0), reps);
  bench_shape("w2_conv1_64x1x28x28_to_32", geom(64, 1, 28, 28, 32, 0), reps);
  bench_shape("64x16x14x14_to_32_pad1", geom(64, 16, 14, 14, 32, 1), reps);
  bench_shape("16x32x20x20_to_64_pad1", geom(16, 32, 20, 20, 64, 1), reps);
  bench_shape("64x64x8x8_to_128_pad1", geom(64, 64, 8, 8, 128, 1), reps);
  // Few channels on either side: where the transforms outweigh the saved multiplies.
  bench_shape("64x4x13x13_to_32", geom(64, 4, 13, 13, 32, 0), reps);
  bench_shape("64x8x13x13_to_16", geom(64, 8, 13, 13, 16, 0), reps);
  bench_shape("64x8x13x13_to_64", geom(64, 8, 13, 13, 64, 0), reps);
  bench_shape("64x32x13x13_to_4", geom(64, 32, 13, 13, 4, 0), reps);
  bench_shape("64x32x13x13_to_8", geom(64, 32, 13, 13, 8, 0), reps);
  bench_shape("64x16x13x13_to_16", geom(64, 16, 13, 13, 16, 0), reps);
  return 0;
}
