// Winograd F(2x2, 3x3) convolution (backend/cpu/conv_winograd.cpp) against the double-accumulating reference
// (reference_conv.h): forward and input gradient, on both ISA paths (AVX-512 and the plain loops + sgemm, the
// second forced with cpu::force_baseline_for_testing), over odd and even sizes, paddings 0-2, channel counts
// that are not multiples of the 8-row micro-tile, wide rows (more than 16 tiles), and W2's conv2.
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <functional>
#include <random>
#include <string>
#include <vector>

#include "loom/backend/cpu/conv_winograd.h"
#include "loom/backend/cpu/cpu_backend.h"
#include "loom/backend/cpu/isa.h"
#include "loom/backend/cpu/reference_conv.h"
#include "loom/core/tensor.h"

using namespace loom;

namespace {

std::vector<float> random_values(int64_t n, uint32_t seed) {
  std::mt19937 gen(seed);
  std::uniform_real_distribution<double> u(-1, 1);
  std::vector<float> v(static_cast<size_t>(n));
  for (float& x : v) x = float(u(gen));
  return v;
}

struct ForceBaseline {  // the hook is process-wide: put it back even when an assertion returns early
  explicit ForceBaseline(bool on) { cpu::force_baseline_for_testing(on); }
  ~ForceBaseline() { cpu::force_baseline_for_testing(false); }
};

void both_paths(const std::function<void()>& check) {
  if (cpu::has_avx512()) {
    SCOPED_TRACE("AVX-512 path");
    check();
  } else {
    std::printf("skipped: winograd on the AVX-512 path (%s)\n", cpu::isa_reason(false).c_str());
  }
  ForceBaseline forced(true);
  ASSERT_FALSE(cpu::has_avx512());
  SCOPED_TRACE("baseline path");
  check();
}

ConvGeom geom(int64_t N, int64_t C, int64_t H, int64_t W, int64_t OC, int64_t ph, int64_t pw) {
  return ConvGeom{.N = N, .C = C, .H = H, .W = W, .OC = OC, .KH = 3, .KW = 3, .OH = H + 2 * ph - 2,
                  .OW = W + 2 * pw - 2, .ph = ph, .pw = pw};
}

std::string name(const ConvGeom& g) {
  char buf[128];
  std::snprintf(buf, sizeof buf, "N%lld C%lld %lldx%lld OC%lld pad %lld,%lld", (long long)g.N, (long long)g.C,
                (long long)g.H, (long long)g.W, (long long)g.OC, (long long)g.ph, (long long)g.pw);
  return buf;
}

// The error bound. Each output is a sum of up to 9*C products of values in [-1, 1]; the reference sums them
// in double. Winograd rounds in float through the input transform (sums of 4 values, each step growing the
// magnitude up to 4x), the GEMM (C terms) and the output transform (9 terms), so its error scales with
// the sum of |terms| (at most 9*C here), not with |y|. Measured on these shapes: max |error| / (9*C) stays
// below 2e-7 on both paths (about 2 float ulps of that scale); 1e-6 leaves room for other compilers and
// still fails for any wrong tap, sign or tile (those give errors of order 1, i.e. 1/(9C) >> 1e-6 scaled).
constexpr double kTolPerTerm = 1e-6;

double max_scaled_error(const std::vector<float>& got, const std::vector<float>& want, double terms) {
  double worst = 0;
  for (size_t i = 0; i < got.size(); ++i) {
    const double e = std::abs(double(got[i]) - double(want[i]));
    worst = std::max(worst, std::isnan(e) ? 1e30 : e / terms);
  }
  return worst;
}

const std::vector<ConvGeom>& shapes() {
  static const std::vector<ConvGeom> s = {
      geom(1, 1, 4, 4, 1, 0, 0),     // one tile
      geom(1, 3, 5, 5, 2, 0, 0),     // odd output (3x3): half of the last tile row and column dropped
      geom(1, 4, 3, 3, 5, 0, 0),     // a 1x1 output
      geom(1, 4, 1, 1, 3, 1, 1),     // 1x1 input, padded
      geom(3, 5, 13, 13, 7, 0, 0),   // W2's conv2 shape, few channels
      geom(3, 17, 13, 13, 19, 1, 1), // channels not multiples of 8 or 16, padding 1
      geom(3, 3, 9, 40, 5, 1, 1),    // 20 tiles per tile row: two 16-tile blocks
      geom(1, 2, 36, 35, 3, 2, 2),   // padding 2, odd width
      geom(2, 3, 6, 7, 4, 0, 1),     // different padding per axis
      geom(5, 8, 8, 8, 16, 0, 0),    // even output, 8 rows exactly
      geom(2, 1, 28, 28, 32, 0, 0),  // W2's conv1
      geom(64, 32, 13, 13, 64, 0, 0) // W2's conv2
  };
  return s;
}

}  // namespace

TEST(ConvWinograd, ForwardMatchesReference) {
  both_paths([] {
    double worst = 0;
    for (const ConvGeom& g : shapes()) {
      SCOPED_TRACE(name(g));
      ASSERT_TRUE(cpu::conv_winograd_supports(g));
      const auto x = random_values(g.N * g.C * g.H * g.W, 1), w = random_values(g.OC * g.C * 9, 2);
      const auto b = random_values(g.OC, 3);
      const size_t ny = size_t(g.N * g.OC * g.OH * g.OW);
      std::vector<float> y(ny, std::nanf("")), want(ny);
      ASSERT_TRUE(cpu::conv2d_winograd(y.data(), x.data(), w.data(), b.data(), g));
      ref::conv2d_forward(want.data(), x.data(), w.data(), b.data(), g);
      const double err = max_scaled_error(y, want, 9.0 * double(g.C));
      EXPECT_LT(err, kTolPerTerm);
      worst = std::max(worst, err);
      if (g.N == 64) std::printf("W2 conv2 forward: max |error| / (9*C) = %.3g\n", err);
      // Without a bias.
      ASSERT_TRUE(cpu::conv2d_winograd(y.data(), x.data(), w.data(), nullptr, g));
      ref::conv2d_forward(want.data(), x.data(), w.data(), static_cast<const float*>(nullptr), g);
      EXPECT_LT(max_scaled_error(y, want, 9.0 * double(g.C)), kTolPerTerm);
    }
    std::printf("forward, all shapes: max |error| / (9*C) = %.3g\n", worst);
  });
}

TEST(ConvWinograd, InputGradMatchesReference) {
  both_paths([] {
    double worst = 0;
    for (const ConvGeom& g : shapes()) {
      SCOPED_TRACE(name(g));
      const auto gy = random_values(g.N * g.OC * g.OH * g.OW, 4), w = random_values(g.OC * g.C * 9, 5);
      const size_t nx = size_t(g.N * g.C * g.H * g.W);
      std::vector<float> dx(nx, std::nanf("")), want(nx);
      ASSERT_TRUE(cpu::conv2d_winograd_input_grad(dx.data(), gy.data(), w.data(), g));
      ref::conv2d_backward(want.data(), static_cast<float*>(nullptr), static_cast<float*>(nullptr), gy.data(),
                           static_cast<const float*>(nullptr), w.data(), g);
      const double err = max_scaled_error(dx, want, 9.0 * double(g.OC));
      EXPECT_LT(err, kTolPerTerm);
      worst = std::max(worst, err);
      if (g.N == 64) std::printf("W2 conv2 input gradient: max |error| / (9*OC) = %.3g\n", err);
    }
    std::printf("input gradient, all shapes: max |error| / (9*OC) = %.3g\n", worst);
  });
}

TEST(ConvWinograd, RefusesOtherGeometriesTouchingNothing) {
  std::vector<ConvGeom> refused;
  ConvGeom g = geom(2, 3, 9, 9, 4, 1, 1);
  ConvGeom s = g;  // stride 2
  s.sh = s.sw = 2;
  s.OH = s.OW = 5;
  refused.push_back(s);
  ConvGeom d = g;  // dilation 2
  d.dh = d.dw = 2;
  d.OH = d.OW = 7;
  refused.push_back(d);
  ConvGeom gr = g;  // groups
  gr.groups = 3;
  gr.OC = 3;
  refused.push_back(gr);
  ConvGeom k5 = g;  // 5x5
  k5.KH = k5.KW = 5;
  k5.OH = k5.OW = 7;
  refused.push_back(k5);
  ConvGeom bad = g;  // an output size that does not follow from the input
  bad.OH = 8;
  refused.push_back(bad);
  refused.push_back(geom(1, 1024, 64, 64, 4, 1, 1));  // a sample too large for the chunk buffers
  for (const ConvGeom& r : refused) {
    SCOPED_TRACE(name(r));
    EXPECT_FALSE(cpu::conv_winograd_supports(r));
    std::vector<float> x(size_t(r.N * r.C * r.H * r.W), 1.0f), w(size_t(r.OC * r.C * r.KH * r.KW), 1.0f);
    std::vector<float> y(size_t(r.N * r.OC * std::max<int64_t>(r.OH, 1) * std::max<int64_t>(r.OW, 1)), -7.0f);
    EXPECT_FALSE(cpu::conv2d_winograd(y.data(), x.data(), w.data(), nullptr, r));
    EXPECT_TRUE(std::all_of(y.begin(), y.end(), [](float v) { return v == -7.0f; }));
  }
  // The input gradient needs padding <= 2 (it pads the output gradient by 2 - padding).
  const ConvGeom p3 = geom(1, 2, 5, 5, 2, 3, 3);
  EXPECT_TRUE(cpu::conv_winograd_supports(p3));
  std::vector<float> gy(size_t(p3.OC * p3.OH * p3.OW), 1.0f), w(size_t(p3.OC * p3.C * 9), 1.0f);
  std::vector<float> dx(size_t(p3.C * p3.H * p3.W), -7.0f);
  EXPECT_FALSE(cpu::conv2d_winograd_input_grad(dx.data(), gy.data(), w.data(), p3));
  EXPECT_TRUE(std::all_of(dx.begin(), dx.end(), [](float v) { return v == -7.0f; }));
}

// Through the backend's dispatch (conv.cpp picks Winograd, the direct kernel or im2col + GEMM by shape): W2's
// conv2 (Winograd forward, im2col dx) and two padded layers (direct forward and Winograd dx; Winograd both),
// forward and all three gradients.
TEST(ConvWinograd, BackendConvMatchesReference) {
  both_paths([] {
    for (const ConvGeom& g : {geom(64, 32, 13, 13, 64, 0, 0), geom(4, 16, 14, 14, 24, 1, 1), geom(4, 16, 10, 10, 32, 1, 1)}) {
      SCOPED_TRACE(name(g));
      const auto x = random_values(g.N * g.C * g.H * g.W, 6), w = random_values(g.OC * g.C * 9, 7);
      const auto b = random_values(g.OC, 8), gy = random_values(g.N * g.OC * g.OH * g.OW, 9);
      auto tensor = [](const Shape& shape, const std::vector<float>& v) {
        Tensor t = make_tensor(shape, DType::f32);
        std::copy(v.begin(), v.end(), t.data<float>());
        return t;
      };
      auto values = [](const Tensor& t) { return std::vector<float>(t.data<float>(), t.data<float>() + t.numel()); };
      cpu::CpuBackend be;
      Tensor tx = tensor({g.N, g.C, g.H, g.W}, x), tw = tensor({g.OC, g.C, 3, 3}, w), tb = tensor({g.OC}, b);
      Tensor ty = make_tensor({g.N, g.OC, g.OH, g.OW}, DType::f32), tg = tensor({g.N, g.OC, g.OH, g.OW}, gy);
      be.conv2d(ty, tx, tw, &tb, g);
      std::vector<float> y(size_t(ty.numel())), dx(x.size()), dw(w.size()), db(b.size());
      ref::conv2d_forward(y.data(), x.data(), w.data(), b.data(), g);
      EXPECT_LT(max_scaled_error(values(ty), y, 9.0 * double(g.C)), kTolPerTerm);
      Tensor tdx = make_tensor(tx.shape(), DType::f32), tdw = make_tensor(tw.shape(), DType::f32);
      Tensor tdb = make_tensor(tb.shape(), DType::f32);
      be.conv2d_backward(&tdx, &tdw, &tdb, tg, tx, tw, g);
      ref::conv2d_backward(dx.data(), dw.data(), db.data(), gy.data(), x.data(), w.data(), g);
      EXPECT_LT(max_scaled_error(values(tdx), dx, 9.0 * double(g.OC)), kTolPerTerm);
      const double sum_terms = double(g.N * g.OH * g.OW);  // dW and db sum over samples and pixels
      EXPECT_LT(max_scaled_error(values(tdw), dw, sum_terms), kTolPerTerm);
      EXPECT_LT(max_scaled_error(values(tdb), db, sum_terms), kTolPerTerm);
    }
  });
}
