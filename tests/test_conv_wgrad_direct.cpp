// The direct weight and bias gradient (backend/cpu/conv_wgrad_direct.cpp) against the double-accumulating
// reference (reference_conv.h) and against the im2col + GEMM path it replaces, through the backend: odd and
// even output channel counts (the kernel pairs them), tap counts around its group size of 12, rows shorter and
// longer than one 16-lane vector, padding, dilation, one sample, odd sample counts across 2 threads, dW or db
// alone, and the dispatch rule on the seed CNN's two layers.
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <random>
#include <string>
#include <vector>

#include "loom/backend/cpu/conv_wgrad_direct.h"
#include "loom/backend/cpu/cpu_backend.h"
#include "loom/backend/cpu/isa.h"
#include "loom/backend/cpu/reference_conv.h"
#include "loom/core/tensor.h"

using namespace loom;

namespace {

Tensor random_tensor(Shape s, uint32_t seed) {
  Tensor t = make_tensor(std::move(s), DType::f32);
  std::mt19937 gen(seed);
  std::uniform_real_distribution<double> u(-1, 1);
  float* p = t.data<float>();
  for (int64_t i = 0; i < t.numel(); ++i) p[i] = float(u(gen));
  return t;
}

ConvGeom geom(int64_t N, int64_t C, int64_t H, int64_t W, int64_t OC, int64_t k, int64_t pad, int64_t dil = 1) {
  const int64_t ext = dil * (k - 1);
  return ConvGeom{.N = N, .C = C, .H = H, .W = W, .OC = OC, .KH = k, .KW = k, .OH = H + 2 * pad - ext,
                  .OW = W + 2 * pad - ext, .ph = pad, .pw = pad, .dh = dil, .dw = dil};
}

std::string name(const ConvGeom& g) {
  char buf[160];
  std::snprintf(buf, sizeof buf, "N%lld C%lld %lldx%lld OC%lld k%lld pad %lld dil %lld", (long long)g.N,
                (long long)g.C, (long long)g.H, (long long)g.W, (long long)g.OC, (long long)g.KH, (long long)g.ph,
                (long long)g.dh);
  return buf;
}

struct Enabled {  // the switch is process-wide: put it back even when an assertion returns early
  explicit Enabled(bool on) { cpu::set_direct_wgrad_enabled(on); }
  ~Enabled() { cpu::set_direct_wgrad_enabled(true); }
};

// |got - want| within a few float roundings of the sum of |terms| each entry adds up.
void expect_close(const float* got, const std::vector<double>& want, const std::vector<double>& scale, int64_t n,
                  const char* what) {
  for (int64_t i = 0; i < n; ++i)
    ASSERT_NEAR(double(got[i]), want[size_t(i)], 1e-6 * scale[size_t(i)] + 1e-6) << what << " entry " << i;
}

// dW and db from the kernel against the reference in double, with tolerances scaled by the sum of |terms|.
void check_against_reference(const ConvGeom& g, int threads) {
  SCOPED_TRACE(name(g) + " threads " + std::to_string(threads));
  ASSERT_TRUE(cpu::conv_direct_wgrad_applies(g));
  const Tensor x = random_tensor({g.N, g.C, g.H, g.W}, 1), gy = random_tensor({g.N, g.OC, g.OH, g.OW}, 2);
  const int64_t nw = g.OC * g.C * g.KH * g.KW;
  std::vector<double> xd(size_t(x.numel())), gd(size_t(gy.numel())), ad(xd.size()), agd(gd.size());
  for (int64_t i = 0; i < x.numel(); ++i) xd[size_t(i)] = x.data<float>()[i], ad[size_t(i)] = std::fabs(xd[size_t(i)]);
  for (int64_t i = 0; i < gy.numel(); ++i)
    gd[size_t(i)] = gy.data<float>()[i], agd[size_t(i)] = std::fabs(gd[size_t(i)]);
  std::vector<double> dw(static_cast<size_t>(nw)), db(static_cast<size_t>(g.OC)), sw(dw.size()), sb(db.size());
  ref::conv2d_backward<double>(nullptr, dw.data(), db.data(), gd.data(), xd.data(), nullptr, g);
  ref::conv2d_backward<double>(nullptr, sw.data(), sb.data(), agd.data(), ad.data(), nullptr, g);

  const int before = get_num_threads();
  set_num_threads(threads);
  std::vector<float> kw(size_t(nw), -7.0f), kb(size_t(g.OC), -7.0f);
  ASSERT_TRUE(cpu::conv2d_direct_weight_grad(kw.data(), kb.data(), gy.data<float>(), x.data<float>(), g));
  expect_close(kw.data(), dw, sw, nw, "dW");
  expect_close(kb.data(), db, sb, g.OC, "db");
  // dW alone and db alone write only what they are given.
  std::vector<float> only_w(size_t(nw), -7.0f), only_b(size_t(g.OC), -7.0f);
  ASSERT_TRUE(cpu::conv2d_direct_weight_grad(only_w.data(), nullptr, gy.data<float>(), x.data<float>(), g));
  ASSERT_TRUE(cpu::conv2d_direct_weight_grad(nullptr, only_b.data(), gy.data<float>(), x.data<float>(), g));
  EXPECT_EQ(only_w, kw);
  EXPECT_EQ(only_b, kb);
  set_num_threads(before);
}

}  // namespace

TEST(ConvWgradDirect, MatchesTheReferenceOverItsShapes) {
  if (!cpu::has_avx512()) {
    std::printf("skipped: the direct weight gradient needs AVX-512 (%s)\n", cpu::isa_reason(false).c_str());
    EXPECT_FALSE(cpu::conv_direct_wgrad_applies(geom(8, 1, 28, 28, 32, 3, 0)));
    return;
  }
  for (int threads : {1, 2}) {
    check_against_reference(geom(8, 1, 28, 28, 32, 3, 0), threads);   // the seed CNN's conv1 (9 taps)
    check_against_reference(geom(5, 1, 28, 28, 6, 5, 2), threads);    // LeNet's conv1 (25 taps, padded)
    check_against_reference(geom(3, 6, 14, 14, 15, 5, 0), threads);   // 150 taps in groups, odd OC
    check_against_reference(geom(1, 3, 32, 32, 31, 3, 1), threads);   // one sample, rows of 2 vectors
    check_against_reference(geom(7, 4, 13, 13, 7, 3, 0), threads);    // 36 taps, rows of 11 (< one vector)
    check_against_reference(geom(4, 2, 20, 20, 9, 3, 2, 2), threads); // dilation 2, wide padding
    check_against_reference(geom(3, 1, 9, 40, 1, 2, 0), threads);     // one output channel, 4 taps, 2.5 vectors
  }
}

TEST(ConvWgradDirect, BackendAgreesWithTheIm2colPath) {
  if (!cpu::has_avx512()) {
    std::printf("skipped: the direct weight gradient needs AVX-512 (%s)\n", cpu::isa_reason(false).c_str());
    return;
  }
  cpu::CpuBackend be;
  for (const ConvGeom& g : {geom(16, 1, 28, 28, 32, 3, 0), geom(6, 3, 17, 17, 16, 3, 1)}) {
    SCOPED_TRACE(name(g));
    const Tensor x = random_tensor({g.N, g.C, g.H, g.W}, 3), w = random_tensor({g.OC, g.C, g.KH, g.KW}, 4);
    const Tensor gy = random_tensor({g.N, g.OC, g.OH, g.OW}, 5);
    Tensor dw[2], db[2], dx[2];
    for (int direct = 0; direct < 2; ++direct) {
      Enabled on(direct == 1);
      EXPECT_EQ(cpu::conv_direct_wgrad_applies(g), direct == 1);
      dw[direct] = make_tensor(w.shape(), DType::f32), db[direct] = make_tensor({g.OC}, DType::f32);
      dx[direct] = make_tensor(x.shape(), DType::f32);
      be.conv2d_backward(&dx[direct], &dw[direct], &db[direct], gy, x, w, g);
    }
    for (int64_t i = 0; i < w.numel(); ++i) EXPECT_NEAR(dw[1].data<float>()[i], dw[0].data<float>()[i], 2e-3) << i;
    for (int64_t i = 0; i < g.OC; ++i) EXPECT_NEAR(db[1].data<float>()[i], db[0].data<float>()[i], 2e-3) << i;
    // The input gradient takes its own path either way: unchanged to the bit.
    for (int64_t i = 0; i < x.numel(); ++i) ASSERT_EQ(dx[1].data<float>()[i], dx[0].data<float>()[i]) << i;
  }
}

TEST(ConvWgradDirect, TakesFirstLayersAndLeavesWideProductsToTheGemm) {
  if (!cpu::has_avx512()) {
    std::printf("skipped: the direct weight gradient needs AVX-512 (%s)\n", cpu::isa_reason(false).c_str());
    return;
  }
  EXPECT_TRUE(cpu::conv_direct_wgrad_applies(geom(64, 1, 28, 28, 32, 3, 0)));    // seed CNN conv1
  EXPECT_FALSE(cpu::conv_direct_wgrad_applies(geom(64, 32, 13, 13, 64, 3, 0)));  // seed CNN conv2: GEMM wins
  EXPECT_FALSE(cpu::conv_direct_wgrad_applies(geom(64, 4, 13, 13, 64, 3, 0)));   // 64 output channels
  ConvGeom strided = geom(8, 1, 28, 28, 32, 3, 0);
  strided.sh = strided.sw = 2, strided.OH = strided.OW = 13;
  EXPECT_FALSE(cpu::conv_direct_wgrad_applies(strided));
  ConvGeom grouped = geom(8, 4, 28, 28, 8, 3, 0);
  grouped.groups = 2;
  EXPECT_FALSE(cpu::conv_direct_wgrad_applies(grouped));
  EXPECT_FALSE(cpu::conv_direct_wgrad_applies(geom(8, 1, 9, 9, 8, 3, 0)));  // rows of 7: below one half vector
  {
    Enabled off(false);
    EXPECT_FALSE(cpu::conv_direct_wgrad_applies(geom(64, 1, 28, 28, 32, 3, 0)));
  }
  std::vector<float> dw(32 * 9);
  EXPECT_FALSE(cpu::conv2d_direct_weight_grad(dw.data(), nullptr, nullptr, nullptr, geom(64, 32, 13, 13, 64, 3, 0)));
}
