// Convolution and pooling: float64 gradchecks, float32 parity with PyTorch (outputs and all gradients),
// fast kernels vs the plain reference kernels on odd shapes, and error messages.
#include <cmath>
#include <cstdio>
#include <functional>
#include <sstream>
#include <string>
#include <tuple>

#include <gtest/gtest.h>

#include "loom/backend/cpu/conv_direct.h"
#include "loom/backend/cpu/isa.h"
#include "loom/backend/cpu/reference_conv.h"
#include "loom/loom.h"
#include "support/gradcheck.h"
#include "support/torch_oracle.h"

using namespace loom;
using loom::test::rand64;
using loom::test::torch_run;

namespace {

// Distinct values spaced far wider than gradcheck's eps, so max pooling has no ties to break.
Tensor distinct64(const Shape& s) {
  return (randperm(numel(s)).to(DType::f64) * 0.1 - 1.0).reshape(s).detach().requires_grad_(true);
}

std::string tuple2(const std::array<int64_t, 2>& v) {
  std::ostringstream os;
  os << "(" << v[0] << ", " << v[1] << ")";
  return os.str();
}

// loom and PyTorch on the same data: output and the gradients of x, w and b for a random upstream grad.
void conv_parity(const Shape& xs, const Shape& ws, const Conv2dArgs& a, bool with_bias, double rtol = 1e-5) {
  manual_seed(42);
  Tensor x = randn(xs).requires_grad_(true), w = (randn(ws) * 0.2).requires_grad_(true);
  Tensor b = with_bias ? randn({ws[0]}).requires_grad_(true) : Tensor();
  Tensor y = conv2d(x, w, b, a);
  Tensor g = randn(y.shape());
  y.backward(g);
  std::vector<test::Arg> args{{"x", x.detach(), true}, {"w", w.detach(), true}, {"g", g}};
  if (with_bias) args.push_back({"b", b.detach(), true});
  auto r = torch_run("y = F.conv2d(x, w, " + std::string(with_bias ? "b" : "None") + ", stride=" + tuple2(a.stride) +
                         ", padding=" + tuple2(a.padding) + ", dilation=" + tuple2(a.dilation) +
                         ", groups=" + std::to_string(a.groups) +
                         ")\ny.backward(g)\nout['y'] = y; out['gx'] = x.grad; out['gw'] = w.grad\n" +
                         (with_bias ? "out['gb'] = b.grad" : ""),
                     args);
  EXPECT_PARITY("conv2d y", y, r["y"], rtol);
  EXPECT_PARITY("conv2d grad x", x.grad(), r["gx"], rtol);
  EXPECT_PARITY("conv2d grad w", w.grad(), r["gw"], rtol);
  if (with_bias) {
    EXPECT_PARITY("conv2d grad b", b.grad(), r["gb"], rtol);
  }
}

ConvGeom geom_of(const Tensor& x, const Tensor& w, const Tensor& y, const Conv2dArgs& a) {
  return {.N = x.size(0), .C = x.size(1), .H = x.size(2), .W = x.size(3), .OC = w.size(0), .KH = w.size(2),
          .KW = w.size(3), .OH = y.size(2), .OW = y.size(3), .sh = a.stride[0], .sw = a.stride[1],
          .ph = a.padding[0], .pw = a.padding[1], .dh = a.dilation[0], .dw = a.dilation[1], .groups = a.groups};
}

// The fast conv2d (through the op and autograd) against ref::conv2d_* on the same, possibly strided, inputs.
template <class T>
void conv_vs_reference(Tensor x, Tensor w, bool with_bias, const Conv2dArgs& a) {
  const DType dt = dtype_of<T>::value;
  const double rtol = dt == DType::f64 ? 1e-12 : 1e-5;  // f32 dW sums up to N*OH*OW products
  x = x.to(dt).detach().requires_grad_(true);
  w = w.to(dt).detach().requires_grad_(true);
  Tensor b = with_bias ? randn({w.size(0)}, {.dtype = dt}).requires_grad_(true) : Tensor();
  Tensor y = conv2d(x, w, b, a);
  Tensor g = randn(y.shape(), {.dtype = dt});
  y.backward(g);

  const ConvGeom geom = geom_of(x, w, y, a);
  Tensor xc = x.detach().contiguous(), wc = w.detach().contiguous();
  Tensor ry = empty(y.shape(), {.dtype = dt}), rdx = empty(x.shape(), {.dtype = dt});
  Tensor rdw = empty(w.shape(), {.dtype = dt}), rdb = empty({w.size(0)}, {.dtype = dt});
  ref::conv2d_forward(ry.data<T>(), xc.data<T>(), wc.data<T>(), with_bias ? b.detach().data<T>() : nullptr, geom);
  ref::conv2d_backward(rdx.data<T>(), rdw.data<T>(), rdb.data<T>(), g.data<T>(), xc.data<T>(), wc.data<T>(), geom);
  EXPECT_PARITY("y vs reference", y, ry, rtol);
  EXPECT_PARITY("dx vs reference", x.grad(), rdx, rtol);
  EXPECT_PARITY("dw vs reference", w.grad(), rdw, rtol);
  if (with_bias) {
    EXPECT_PARITY("db vs reference", b.grad(), rdb, rtol);
  }
}

void conv_vs_reference_both(const Tensor& x, const Tensor& w, bool with_bias, const Conv2dArgs& a) {
  conv_vs_reference<double>(x, w, with_bias, a);
  conv_vs_reference<float>(x, w, with_bias, a);
}

// Pooling through the ops against the ref:: kernels: values, indices and input gradients.
enum class Pool { Max, Avg, Adaptive };
template <class T>
void pool_vs_reference(Pool kind, Tensor x, const Pool2dArgs& a, std::array<int64_t, 2> out_size = {1, 1}) {
  const DType dt = dtype_of<T>::value;
  x = x.to(dt).detach().requires_grad_(true);
  Tensor y, idx;
  if (kind == Pool::Max) std::tie(y, idx) = max_pool2d_with_indices(x, a);
  else y = kind == Pool::Avg ? avg_pool2d(x, a) : adaptive_avg_pool2d(x, out_size);
  Tensor g = randn(y.shape(), {.dtype = dt});
  y.backward(g);
  const auto s = a.stride[0] == 0 && a.stride[1] == 0 ? a.kernel_size : a.stride;
  const PoolGeom pg{.N = x.size(0), .C = x.size(1), .H = x.size(2), .W = x.size(3), .OH = y.size(2), .OW = y.size(3),
                    .KH = a.kernel_size[0], .KW = a.kernel_size[1], .sh = s[0], .sw = s[1], .ph = a.padding[0],
                    .pw = a.padding[1], .dh = a.dilation[0], .dw = a.dilation[1],
                    .count_include_pad = a.count_include_pad};
  Tensor xc = x.detach().contiguous();
  Tensor ry = empty(y.shape(), {.dtype = dt}), rdx = empty(x.shape(), {.dtype = dt});
  if (kind == Pool::Max) {
    Tensor ridx = empty(y.shape(), {.dtype = DType::i64});
    ref::max_pool2d_forward(ry.data<T>(), ridx.data<int64_t>(), xc.data<T>(), pg);
    ref::max_pool2d_backward(rdx.data<T>(), g.data<T>(), ridx.data<int64_t>(), pg);
    EXPECT_EQ(idx.tolist(), ridx.tolist());
  } else if (kind == Pool::Avg) {
    ref::avg_pool2d_forward(ry.data<T>(), xc.data<T>(), pg);
    ref::avg_pool2d_backward(rdx.data<T>(), g.data<T>(), pg);
  } else {
    ref::adaptive_avg_pool2d_forward(ry.data<T>(), xc.data<T>(), pg);
    ref::adaptive_avg_pool2d_backward(rdx.data<T>(), g.data<T>(), pg);
  }
  const double rtol = dt == DType::f64 ? 1e-12 : 1e-6;
  EXPECT_PARITY("pool y vs reference", y, ry, rtol);
  EXPECT_PARITY("pool dx vs reference", x.grad(), rdx, rtol);
}

void pool_vs_reference_both(Pool kind, const Tensor& x, const Pool2dArgs& a, std::array<int64_t, 2> out = {1, 1}) {
  pool_vs_reference<double>(kind, x, a, out);
  pool_vs_reference<float>(kind, x, a, out);
}

// Expects f to throw loom::Error whose message contains every one of `parts`.
void expect_error(const std::function<void()>& f, const std::vector<std::string>& parts) {
  try {
    f();
    ADD_FAILURE() << "expected loom::Error";
  } catch (const Error& e) {
    const std::string msg = e.what();
    for (const auto& p : parts) EXPECT_NE(msg.find(p), std::string::npos) << "'" << p << "' not in: " << msg;
  }
}

}  // namespace

// ---- gradcheck (float64)

TEST(ConvGradcheck, Conv2dStridePadDilationGroups) {
  manual_seed(1);
  const Conv2dArgs a{.stride = {2, 1}, .padding = {1, 2}, .dilation = {2, 1}, .groups = 2};
  EXPECT_GRADCHECK([&](const std::vector<Tensor>& in) { return conv2d(in[0], in[1], in[2], a); },
                   {rand64({2, 4, 7, 6}), rand64({6, 2, 3, 2}), rand64({6})});
}

TEST(ConvGradcheck, Conv2dNoBiasAndChunkedBatch) {
  manual_seed(2);
  // Five samples of 20x20 output run as GEMM chunks of 3 and 2 samples.
  EXPECT_GRADCHECK([](const std::vector<Tensor>& in) { return conv2d(in[0], in[1], {}, {.padding = {1, 1}}); },
                   {rand64({5, 2, 20, 20}), rand64({3, 2, 3, 3})});
  EXPECT_GRADCHECK([](const std::vector<Tensor>& in) { return conv2d(in[0], in[1], in[2], {.stride = {3, 2}}); },
                   {rand64({1, 3, 8, 7}), rand64({2, 3, 2, 3}), rand64({2})});
}

TEST(ConvGradcheck, Conv2dPointwise) {
  manual_seed(3);
  for (int64_t n : {1, 3})
    EXPECT_GRADCHECK([](const std::vector<Tensor>& in) { return conv2d(in[0], in[1], in[2]); },
                     {rand64({n, 4, 3, 5}), rand64({5, 4, 1, 1}), rand64({5})});
}

TEST(ConvGradcheck, Conv1d) {
  manual_seed(4);
  const Conv1dArgs a{.stride = 2, .padding = 1, .dilation = 2, .groups = 2};
  EXPECT_GRADCHECK([&](const std::vector<Tensor>& in) { return conv1d(in[0], in[1], in[2], a); },
                   {rand64({2, 4, 11}), rand64({6, 2, 3}), rand64({6})});
  EXPECT_GRADCHECK([](const std::vector<Tensor>& in) { return conv1d(in[0], in[1]); },
                   {rand64({3, 2, 5}), rand64({4, 2, 5})});
}

TEST(PoolGradcheck, MaxPool2d) {
  manual_seed(5);
  EXPECT_GRADCHECK([](const std::vector<Tensor>& in) { return max_pool2d(in[0]); }, {distinct64({2, 3, 6, 7})});
  const Pool2dArgs a{.kernel_size = {3, 2}, .stride = {2, 1}, .padding = {1, 1}, .dilation = {2, 1}, .ceil_mode = true};
  EXPECT_GRADCHECK([&](const std::vector<Tensor>& in) { return max_pool2d(in[0], a); }, {distinct64({2, 2, 8, 5})});
}

TEST(PoolGradcheck, AvgPool2dPaddingAndCeilMode) {
  manual_seed(6);
  for (bool include : {true, false})
    for (bool ceil : {false, true}) {
      const Pool2dArgs a{.kernel_size = {3, 2}, .stride = {2, 2}, .padding = {1, 1}, .ceil_mode = ceil,
                         .count_include_pad = include};
      EXPECT_GRADCHECK([&](const std::vector<Tensor>& in) { return avg_pool2d(in[0], a); }, {rand64({2, 2, 6, 7})});
    }
}

TEST(PoolGradcheck, AdaptiveAvgPool2dUneven) {
  manual_seed(7);
  EXPECT_GRADCHECK([](const std::vector<Tensor>& in) { return adaptive_avg_pool2d(in[0], {3, 4}); },
                   {rand64({2, 2, 7, 5})});
  EXPECT_GRADCHECK([](const std::vector<Tensor>& in) { return adaptive_avg_pool2d(in[0], {5, 1}); },
                   {rand64({1, 3, 3, 6})});
}

// ---- parity with PyTorch (float32)

TEST(ConvParity, W2Conv1And2) {
  conv_parity({64, 1, 28, 28}, {32, 1, 3, 3}, {}, true);
  conv_parity({64, 32, 13, 13}, {64, 32, 3, 3}, {}, true);
}

TEST(ConvParity, LeNetConv1) { conv_parity({8, 1, 28, 28}, {6, 1, 5, 5}, {.padding = {2, 2}}, true); }

TEST(ConvParity, StridePadDilationGroups) {
  conv_parity({3, 6, 11, 9}, {9, 2, 3, 2}, {.stride = {2, 1}, .padding = {1, 2}, .dilation = {1, 2}, .groups = 3},
              true);
  conv_parity({2, 4, 10, 10}, {4, 1, 3, 3}, {.stride = {1, 1}, .padding = {1, 1}, .groups = 4}, false);
  conv_parity({1, 8, 9, 9}, {16, 8, 1, 1}, {}, true);
  conv_parity({5, 3, 17, 17}, {4, 3, 4, 4}, {.stride = {3, 3}, .padding = {3, 0}}, false);
}

TEST(ConvParity, Conv1d) {
  manual_seed(8);
  Tensor x = randn({4, 6, 23}).requires_grad_(true), w = randn({8, 3, 4}).requires_grad_(true);
  Tensor b = randn({8}).requires_grad_(true);
  Tensor y = conv1d(x, w, b, {.stride = 2, .padding = 3, .dilation = 2, .groups = 2});
  Tensor g = randn(y.shape());
  y.backward(g);
  auto r = torch_run("y = F.conv1d(x, w, b, stride=2, padding=3, dilation=2, groups=2); y.backward(g)\n"
                     "out['y'] = y; out['gx'] = x.grad; out['gw'] = w.grad; out['gb'] = b.grad",
                     {{"x", x.detach(), true}, {"w", w.detach(), true}, {"b", b.detach(), true}, {"g", g}});
  EXPECT_PARITY("conv1d y", y, r["y"]);
  EXPECT_PARITY("conv1d gx", x.grad(), r["gx"]);
  EXPECT_PARITY("conv1d gw", w.grad(), r["gw"]);
  EXPECT_PARITY("conv1d gb", b.grad(), r["gb"]);
}

TEST(PoolParity, MaxAvgAdaptive) {
  manual_seed(9);
  Tensor x = randn({3, 4, 11, 9}).requires_grad_(true);
  auto [mp, idx] = max_pool2d_with_indices(x, {.kernel_size = {3, 3}, .stride = {2, 2}, .padding = {1, 1},
                                               .dilation = {1, 2}, .ceil_mode = true});
  Tensor ap = avg_pool2d(x, {.kernel_size = {3, 2}, .stride = {2, 3}, .padding = {1, 1}, .ceil_mode = true,
                             .count_include_pad = false});
  // H = 5, kernel 2, stride 2, padding 1, ceil_mode: PyTorch drops the window that would start in the right padding.
  Tensor small = x.narrow(2, 0, 5).narrow(3, 0, 5);
  Tensor ap2 = avg_pool2d(small, {.kernel_size = {2, 2}, .stride = {2, 2}, .padding = {1, 1}, .ceil_mode = true});
  Tensor ad = adaptive_avg_pool2d(x, {4, 5});
  Tensor loss = (mp * mp).sum() + (ap * 2.0).sum() + (ap2 * ap2).sum() + (ad * ad * ad).sum();
  loss.backward();
  auto r = torch_run(
      "mp, idx = F.max_pool2d(x, 3, 2, 1, dilation=(1, 2), ceil_mode=True, return_indices=True)\n"
      "ap = F.avg_pool2d(x, (3, 2), (2, 3), 1, ceil_mode=True, count_include_pad=False)\n"
      "ap2 = F.avg_pool2d(x[:, :, :5, :5], 2, 2, 1, ceil_mode=True)\n"
      "ad = F.adaptive_avg_pool2d(x, (4, 5))\n"
      "((mp * mp).sum() + (ap * 2).sum() + (ap2 * ap2).sum() + (ad ** 3).sum()).backward()\n"
      "out.update(mp=mp, idx=idx, ap=ap, ap2=ap2, ad=ad, gx=x.grad)",
      {{"x", x.detach(), true}});
  EXPECT_PARITY("max_pool2d", mp, r["mp"]);
  EXPECT_EQ(idx.tolist(), r["idx"].tolist());
  EXPECT_PARITY("avg_pool2d", ap, r["ap"]);
  EXPECT_PARITY("avg_pool2d ceil_mode edge", ap2, r["ap2"]);
  EXPECT_PARITY("adaptive_avg_pool2d", ad, r["ad"]);
  EXPECT_PARITY("pooling grad x", x.grad(), r["gx"]);
}

// ---- fast kernels vs reference kernels

TEST(ConvReference, SizeOneAndPrimeShapes) {
  manual_seed(10);
  conv_vs_reference_both(randn({1, 1, 1, 1}), randn({1, 1, 1, 1}), true, {});
  conv_vs_reference_both(randn({1, 1, 1, 1}), randn({3, 1, 3, 3}), true, {.padding = {1, 1}});
  conv_vs_reference_both(randn({3, 5, 13, 7}), randn({7, 5, 3, 5}), true, {.stride = {2, 3}, .padding = {2, 1}});
  conv_vs_reference_both(randn({2, 3, 11, 13}), randn({5, 3, 2, 3}), false,
                         {.stride = {1, 2}, .padding = {4, 3}, .dilation = {3, 2}});
  conv_vs_reference_both(randn({1, 2, 7, 5}), randn({3, 2, 3, 3}), true, {.stride = {5, 4}});  // stride > kernel
}

TEST(ConvReference, DirectKernelShapes) {
  // The stride-1 direct forward (float32, conv_direct.cpp): output channels not a multiple of its 8-row
  // tiles, pixel counts not a multiple of its 48-pixel tiles, non-square kernels, padding (up to more than
  // the kernel reaches) and dilation, one output row, one input channel. Each shape must take the direct
  // path where the CPU runs the AVX-512 kernels (checked first, so a change to its rule cannot silently skip
  // this test); the float64 run and the others around it take im2col + GEMM.
  manual_seed(17);
  if (!cpu::has_avx512())  // the shapes still run, through im2col + GEMM (test_isa_dispatch covers both paths)
    std::printf("skipped: the direct kernel itself (%s)\n", cpu::isa_reason(false).c_str());
  struct Case {
    Shape x, w;
    Conv2dArgs a;
  };
  const std::vector<Case> cases = {
      {{3, 5, 13, 13}, {13, 5, 3, 3}, {}},
      {{2, 1, 28, 28}, {32, 1, 3, 3}, {}},
      {{2, 7, 9, 17}, {5, 7, 3, 5}, {.padding = {1, 2}}},
      {{2, 3, 12, 11}, {9, 3, 3, 3}, {.padding = {2, 1}, .dilation = {2, 1}}},
      {{1, 4, 6, 8}, {3, 4, 2, 2}, {.padding = {3, 3}}},  // outputs that read only padding
      {{2, 6, 3, 40}, {17, 6, 3, 2}, {}},                  // a single output row of 39 pixels
  };
  for (const Case& c : cases) {
    const int64_t OH = c.x[2] + 2 * c.a.padding[0] - c.a.dilation[0] * (c.w[2] - 1);
    const int64_t OW = c.x[3] + 2 * c.a.padding[1] - c.a.dilation[1] * (c.w[3] - 1);
    Tensor probe = empty({c.x[0], c.w[0], OH, OW});
    const ConvGeom geom = geom_of(empty(c.x), empty(c.w), probe, c.a);
    EXPECT_EQ(cpu::conv_direct_applies(geom), cpu::has_avx512())
        << "case with " << c.w[0] << " output channels, input width " << c.x[3];
    conv_vs_reference_both(randn(c.x), randn(c.w), true, c.a);
    conv_vs_reference<float>(randn(c.x), randn(c.w), false, c.a);
  }
  // Shapes the direct kernel refuses (stride 2, groups, 1x1, output rows under half the padded row) still
  // get the right answer from the fallback.
  const ConvGeom strided{.N = 1, .C = 2, .H = 9, .W = 9, .OC = 4, .KH = 3, .KW = 3, .OH = 4, .OW = 4, .sh = 2, .sw = 2};
  EXPECT_FALSE(cpu::conv_direct_applies(strided));
  const ConvGeom narrow{.N = 1, .C = 2, .H = 9, .W = 9, .OC = 4, .KH = 7, .KW = 7, .OH = 3, .OW = 3};
  EXPECT_FALSE(cpu::conv_direct_applies(narrow));
  conv_vs_reference<float>(randn({2, 2, 9, 9}), randn({4, 2, 7, 7}), true, {});
  conv_vs_reference<float>(randn({2, 4, 9, 9}), randn({4, 2, 3, 3}), true, {.groups = 2});
}

TEST(ConvReference, NonContiguousInputs) {
  manual_seed(11);
  Tensor x = randn({3, 9, 11, 5}).permute({0, 3, 1, 2});  // (N, C=5, H=9, W=11) in NHWC memory
  Tensor w = randn({5, 7, 3, 3}).transpose(0, 1);         // (7, 5, 3, 3), transposed
  conv_vs_reference_both(x, w, true, {.padding = {1, 1}});
  Tensor xs = randn({4, 3, 20, 17}).slice(2, 1, 20, 2);  // every other row
  conv_vs_reference_both(xs, randn({2, 3, 2, 2}), true, {.stride = {1, 2}});
}

TEST(ConvReference, Groups) {
  manual_seed(12);
  conv_vs_reference_both(randn({2, 6, 9, 8}), randn({9, 2, 3, 3}), true, {.padding = {1, 1}, .groups = 3});
  conv_vs_reference_both(randn({3, 5, 7, 7}), randn({5, 1, 3, 3}), true,
                         {.stride = {2, 2}, .padding = {1, 1}, .groups = 5});  // depthwise
  conv_vs_reference_both(randn({1, 4, 5, 6}), randn({8, 2, 1, 1}), false, {.groups = 2});  // pointwise, one sample
}

TEST(ConvReference, BatchChunksAndLargeColumns) {
  manual_seed(13);
  // 7 samples of 20x20 output: GEMM chunks of 3, 3 and 1 samples.
  conv_vs_reference_both(randn({7, 3, 22, 22}), randn({4, 3, 3, 3}), true, {});
  // One sample's column matrix exceeds the chunk budget: one sample per chunk.
  conv_vs_reference<float>(randn({2, 16, 92, 92}), randn({4, 16, 3, 3}), true, {});
  conv_vs_reference_both(randn({5, 6, 4, 4}), randn({3, 6, 1, 1}), true, {});  // pointwise, batched columns
}

TEST(ConvReference, ThreadSplits) {
  // Samples split across 1, 2 and 3 threads, each with its own columns and partial dW.
  manual_seed(15);
  const int saved = get_num_threads();
  for (int nt : {1, 2, 3}) {
    set_num_threads(nt);
    conv_vs_reference_both(randn({7, 8, 24, 24}), randn({8, 8, 3, 3}), true, {.padding = {1, 1}});
    conv_vs_reference_both(randn({6, 8, 16, 16}), randn({32, 4, 3, 3}), false, {.groups = 2});
  }
  set_num_threads(saved);
}

TEST(ConvReference, GradientOfOneOperandOnly) {
  // A frozen weight (only dx) and a frozen input (only dW), on both the threaded and the sequential path.
  manual_seed(16);
  for (int64_t n : {1, 6}) {
    Tensor x = randn({n, 8, 20, 20}), w = randn({16, 8, 3, 3}) * 0.1;
    const ConvGeom geom{.N = n, .C = 8, .H = 20, .W = 20, .OC = 16, .KH = 3, .KW = 3, .OH = 18, .OW = 18};
    Tensor g = randn({n, 16, 18, 18});
    Tensor rdx = empty(x.shape()), rdw = empty(w.shape());
    ref::conv2d_backward<float>(rdx.data<float>(), rdw.data<float>(), nullptr, g.data<float>(), x.data<float>(),
                                w.data<float>(), geom);
    Tensor xg = x.clone().requires_grad_(true);
    conv2d(xg, w).backward(g);
    EXPECT_PARITY("dx only", xg.grad(), rdx, 1e-5);
    Tensor wg = w.clone().requires_grad_(true);
    conv2d(x, wg).backward(g);
    EXPECT_PARITY("dw only", wg.grad(), rdw, 1e-5);
  }
}

TEST(PoolReference, OddShapes) {
  manual_seed(14);
  pool_vs_reference_both(Pool::Max, randn({1, 1, 1, 1}), {.kernel_size = {1, 1}});
  pool_vs_reference_both(Pool::Max, randn({2, 3, 13, 7}), {.kernel_size = {3, 2}, .stride = {2, 3}, .padding = {1, 1},
                                                           .dilation = {2, 2}, .ceil_mode = true});
  pool_vs_reference_both(Pool::Max, randn({3, 11, 7, 5}).permute({0, 3, 1, 2}), {.kernel_size = {2, 2}});
  for (bool include : {true, false})
    pool_vs_reference_both(Pool::Avg, randn({2, 3, 11, 7}), {.kernel_size = {5, 3}, .stride = {3, 2}, .padding = {2, 1},
                                                              .ceil_mode = true, .count_include_pad = include});
  pool_vs_reference_both(Pool::Avg, randn({2, 5, 7, 3}).transpose(1, 3), {.kernel_size = {3, 3}, .stride = {1, 1}});
  // NaN propagates and wins (as in PyTorch); a window of -inf reports its first element.
  std::vector<double> v(2 * 9 * 10);
  for (size_t i = 0; i < v.size(); ++i) v[i] = double((i * 37) % 23);
  v[5] = v[47] = v[120] = std::nan("");
  for (size_t i : {51, 52, 53, 61, 62, 63, 71, 72, 73}) v[i] = -INFINITY;  // rows 5-7, columns 1-3
  pool_vs_reference_both(Pool::Max, tensor(v, {1, 2, 9, 10}), {.kernel_size = {2, 2}, .padding = {1, 1}});
  pool_vs_reference_both(Pool::Max, tensor(v, {1, 2, 9, 10}), {.kernel_size = {3, 3}, .stride = {1, 1}});
  // The 2x2 / stride 2 fast kernel (float32): rows of 1, 16 and 35 outputs (a masked remainder after whole
  // vectors), odd sizes whose last row and column no window reads, NaN and -inf windows, and a 2x2 pooling
  // with padding, which must take the general path.
  for (auto [h, w] : {std::pair<int64_t, int64_t>{2, 2}, {26, 26}, {11, 11}, {9, 32}, {5, 71}})
    pool_vs_reference_both(Pool::Max, randn({2, 3, h, w}), {.kernel_size = {2, 2}});
  pool_vs_reference_both(Pool::Max, tensor(v, {1, 2, 9, 10}), {.kernel_size = {2, 2}});
  pool_vs_reference_both(Pool::Max, tensor(v, {2, 1, 10, 9}), {.kernel_size = {2, 2}});
  pool_vs_reference_both(Pool::Max, randn({2, 3, 7, 9}), {.kernel_size = {2, 2}, .ceil_mode = true});
  pool_vs_reference_both(Pool::Adaptive, randn({2, 3, 13, 7}), {}, {5, 3});
  pool_vs_reference_both(Pool::Adaptive, randn({1, 2, 3, 5}), {}, {7, 11});  // more outputs than inputs
  pool_vs_reference_both(Pool::Adaptive, randn({2, 3, 1, 1}).expand({2, 3, 4, 4}), {}, {2, 2});
}

// ---- errors name the op and the shapes

TEST(ConvErrors, RankChannelsKernel) {
  Tensor w = randn({8, 3, 3, 3});
  expect_error([&] { conv2d(randn({2, 3, 9}), w); }, {"conv2d", "(N, C, H, W)", "[2, 3, 9]"});
  expect_error([&] { conv2d(randn({2, 4, 9, 9}), w); },
               {"conv2d: expected input (N, C, H, W) with C = 3 to match weight [8, 3, 3, 3], got [2, 4, 9, 9]"});
  expect_error([&] { conv2d(randn({1, 3, 4, 4}), randn({8, 3, 5, 5})); },
               {"conv2d", "kernel size 5x5", "padded input 4x4", "[1, 3, 4, 4]", "[8, 3, 5, 5]"});
  expect_error([&] { conv2d(randn({1, 3, 2, 2}), w, {}, {.padding = {0, 1}, .dilation = {1, 1}}); },
               {"conv2d", "larger than the padded input 2x4"});
  expect_error([&] { conv2d(randn({1, 6, 5, 5}), randn({5, 2, 3, 3}), {}, {.groups = 3}); },
               {"conv2d", "[5, 2, 3, 3]", "not divisible by groups = 3"});
  expect_error([&] { conv2d(randn({1, 3, 5, 5}), w, randn({7})); }, {"conv2d", "bias of shape [8]", "[7]"});
  expect_error([&] { conv2d(randn({1, 3, 5, 5}), w, {}, {.stride = {0, 1}}); }, {"conv2d", "stride"});
  expect_error([&] { conv1d(randn({2, 3, 9, 9}), randn({4, 3, 3})); }, {"conv1d", "(N, C, L)", "[2, 3, 9, 9]"});
  expect_error([&] { conv1d(randn({2, 5, 9}), randn({4, 3, 3})); },
               {"conv1d: expected input (N, C, L) with C = 3 to match weight [4, 3, 3], got [2, 5, 9]"});
  expect_error([&] { conv1d(randn({2, 3, 2}), randn({4, 3, 3})); }, {"conv1d", "kernel size 3", "padded input 2"});
}

TEST(PoolErrors, RankPaddingSize) {
  expect_error([&] { max_pool2d(randn({3, 8, 8})); }, {"max_pool2d", "(N, C, H, W)", "[3, 8, 8]"});
  expect_error([&] { avg_pool2d(randn({1, 1, 8, 8}), {.kernel_size = {2, 2}, .padding = {2, 0}}); },
               {"avg_pool2d", "padding 2x0", "half of kernel_size 2x2"});
  expect_error([&] { max_pool2d(randn({1, 2, 3, 3}), {.kernel_size = {5, 5}}); },
               {"max_pool2d", "[1, 2, 3, 3]", "too small", "kernel_size 5x5"});
  expect_error([&] { avg_pool2d(randn({1, 1, 4, 4}), {.dilation = {2, 2}}); }, {"avg_pool2d", "dilation"});
  expect_error([&] { adaptive_avg_pool2d(randn({1, 2, 4, 4}), {0, 2}); }, {"adaptive_avg_pool2d", "output_size"});
  expect_error([&] { adaptive_avg_pool2d(randn({2, 4, 4}), {2, 2}); }, {"adaptive_avg_pool2d", "[2, 4, 4]"});
}
