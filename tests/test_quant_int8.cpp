// Dynamic int8 quantization (backend/cpu/int8_gemm.h, quant/int8_layers.h, quant/quantize_dynamic.h): the weight
// and activation rules worked by hand, the VNNI kernel against the reference loops on odd shapes and strided
// operands, parity with torch 1.13's dynamic Linear / Conv2d (per_channel_dynamic_qconfig: the same int8 bytes
// and scales, outputs to float rounding), quantize_dynamic on a small CNN, loading a quantized state dict, errors.
#include <gtest/gtest.h>

#include <cmath>
#include <cstring>
#include <vector>

#include "loom/loom.h"
#include "support/random_buffer.h"
#include "loom/backend/cpu/int8_gemm.h"
#include "loom/quant/int8_layers.h"
#include "loom/quant/quantize_dynamic.h"
#include "support/strict_backend.h"
#include "support/torch_oracle.h"

using namespace loom;
using namespace loom::quant;

namespace {

using loom::test::random_buffer;

// A random int8 weight matrix (N, K) as the kernels take it: values, positive per-row scales, row sums.
struct RandomInt8Weights {
  std::vector<int8_t> q;
  std::vector<float> scale;
  std::vector<int32_t> sums;
  Int8Weights view(const float* bias) const {
    return {q.data(), scale.data(), sums.data(), bias, int64_t(sums.size())};
  }
};
RandomInt8Weights random_int8_weights(int64_t N, int64_t K, uint64_t seed) {
  RandomInt8Weights w{std::vector<int8_t>(size_t(N * K)), random_buffer(N, seed, 0.01f, 0.05f),
                      std::vector<int32_t>(size_t(N), 0)};
  const std::vector<float> wf = random_buffer(N * K, seed + 2, 60.0f);
  for (int64_t i = 0; i < N * K; ++i) w.q[i] = int8_t(std::clamp(std::nearbyint(wf[i]), -128.0f, 127.0f));
  for (int64_t n = 0; n < N; ++n)
    for (int64_t k = 0; k < K; ++k) w.sums[n] += w.q[n * K + k];
  for (float& s : w.scale) s = std::abs(s) + 1e-3f;
  return w;
}

std::vector<int8_t> int8_values(const Tensor& q) {
  const auto* p = reinterpret_cast<const int8_t*>(q.contiguous().data<uint8_t>());
  return std::vector<int8_t>(p, p + q.numel());
}

// torch's Linear / Conv2d with our float weights, quantized by nnqd.*.from_float under per_channel_dynamic_qconfig.
const char* kTorchPrelude =
    "from torch.ao.quantization import per_channel_dynamic_qconfig\n"
    "import torch.ao.nn.quantized.dynamic as nnqd\n";

}  // namespace

TEST(Int8Rules, WeightRowHandWorked) {
  // amax 2: scale = 2 / 127.5 = 0.015686275f, 1 / scale = 63.749996f (float), so -2 -> -127.49999 -> -127.
  const float w[5] = {1.0f, -2.0f, 0.25f, 0.0f, 0.7f};
  int8_t q[5];
  float s = 0;
  quantize_int8_row(w, q, &s, 5);
  EXPECT_EQ(s, 2.0f / 127.5f);
  const int8_t want[5] = {64, -127, 16, 0, 45};
  for (int i = 0; i < 5; ++i) EXPECT_EQ(q[i], want[i]) << i;
  // amax 2.55: scale 0.02, 1 / scale = 50 exactly, so -2.55 -> -127.5 -> -128 (ties to even) and +2.55 -> 127.5
  // -> 128, clamped to 127.
  const float w2[2] = {-2.55f, 2.55f};
  quantize_int8_row(w2, q, &s, 2);
  EXPECT_EQ(s, 2.55f / 127.5f);
  EXPECT_EQ(q[0], -128);
  EXPECT_EQ(q[1], 127);
  // An all-zero row: the scale is float32's eps, the values 0.
  const float z[3] = {0, 0, 0};
  quantize_int8_row(z, q, &s, 3);
  EXPECT_EQ(s, FLT_EPSILON);
  EXPECT_EQ(q[0], 0);
}

TEST(Int8Rules, ActivationParamsHandWorked) {
  // [-1, 3]: scale 4 / 127; the zero point from either end is 31.75 -> 32.
  Int8Params p = choose_int8_params(-1.0f, 3.0f);
  EXPECT_EQ(p.scale, float(4.0 / 127.0));
  EXPECT_EQ(p.zero_point, 32);
  // All positive: the range is widened to 0, zero point 0.
  p = choose_int8_params(0.5f, 2.0f);
  EXPECT_EQ(p.scale, float(2.0 / 127.0));
  EXPECT_EQ(p.zero_point, 0);
  // All negative: zero point at the top.
  p = choose_int8_params(-2.0f, -0.5f);
  EXPECT_EQ(p.zero_point, 127);
  // All zero: scale 0.1 (fbgemm never divides by a zero scale); a tiny range: the 6.1e-5 floor.
  p = choose_int8_params(0.0f, 0.0f);
  EXPECT_EQ(p.scale, 0.1f);
  EXPECT_EQ(p.zero_point, 0);
  p = choose_int8_params(0.0f, 1e-6f);
  EXPECT_EQ(p.scale, 6.1e-5f);
  EXPECT_THROW(choose_int8_params(1.0f, -1.0f), Error);
  // The u8 quantizer: ties to even after adding the zero point, clamped, NaN to 0.
  EXPECT_EQ(quantize_u8(0.5f, 1.0f, 0.0f), 0);
  EXPECT_EQ(quantize_u8(1.5f, 1.0f, 10.0f), 12);
  EXPECT_EQ(quantize_u8(1e9f, 1.0f, 3.0f), 255);
  EXPECT_EQ(quantize_u8(-1e9f, 1.0f, 3.0f), 0);
  EXPECT_EQ(quantize_u8(NAN, 1.0f, 3.0f), 0);
}

TEST(Int8Kernel, ReferenceHandWorked) {
  // x = [0, 1] with scale 0.5, zero point 10 -> u8 [10, 12] -> (0, 2); weights [3, -4] scale 0.25; bias 0.5:
  // (0 * 3 + 2 * -4) * (0.5 * 0.25) + 0.5 = -0.5.
  float x[2] = {0.0f, 1.0f}, y = 0, scale = 0.25f, bias = 0.5f;
  const int8_t q[2] = {3, -4};
  const int32_t sums = -1;
  const Int8Weights w{q, &scale, &sums, &bias, 1};
  int8_gemm_ref({&y, 1, 1}, {x, 2, 1}, 1, 2, {0.5f, 10}, w);
  EXPECT_EQ(y, -0.5f);
  y = 0;
  int8_gemm({&y, 1, 1}, {x, 2, 1}, 1, 2, {0.5f, 10}, w);
  EXPECT_EQ(y, -0.5f);
}

TEST(Int8Kernel, FastMatchesReferenceOnOddShapes) {
  int checked = 0;
  for (int64_t M : {1, 5, 63, 64, 65, 130})
    for (int64_t N : {1, 6, 7, 13})
      for (int64_t K : {1, 3, 4, 9, 17, 64, 300})
        for (int layout = 0; layout < 2; ++layout) {
          std::vector<float> x = random_buffer(M * K, 1 + K, 2.0f, 0.3f);
          std::vector<float> bias = random_buffer(N, 3);
          const RandomInt8Weights rw = random_int8_weights(N, K, 2);
          const Int8Params p = choose_int8_params(*std::min_element(x.begin(), x.end()), *std::max_element(x.begin(), x.end()));
          // layout 0: a Linear's row-major x (M, K) and y (M, N); layout 1: a convolution's, x stored (K, M) and y
          // (N, M), both read through transposed strides.
          const ConstStridedF32 xv = layout == 0 ? ConstStridedF32{x.data(), K, 1} : ConstStridedF32{x.data(), 1, M};
          std::vector<float> y(M * N, -7.0f), y_ref(M * N, -7.0f);
          const StridedF32 yv = layout == 0 ? StridedF32{y.data(), N, 1} : StridedF32{y.data(), 1, M};
          const StridedF32 yr = layout == 0 ? StridedF32{y_ref.data(), N, 1} : StridedF32{y_ref.data(), 1, M};
          const Int8Weights w = rw.view((M + N) % 2 ? bias.data() : nullptr);
          int8_gemm(yv, xv, M, K, p, w);
          int8_gemm_ref(yr, xv, M, K, p, w);
          for (int64_t i = 0; i < M * N; ++i)
            ASSERT_NEAR(y[i], y_ref[i], 1e-5f * (1.0f + std::abs(y_ref[i])))
                << "M=" << M << " N=" << N << " K=" << K << " layout " << layout << " at " << i;
          ++checked;
        }
  EXPECT_EQ(checked, 6 * 4 * 7 * 2);
}

TEST(Int8Kernel, BatchedMatchesReferencePerEntry) {
  // Three entries laid out as a convolution chunk: x (B, K, M) read as (B, M, K), y (B, N, M) written as (B, M, N).
  for (int64_t M : {5, 121}) {
    const int64_t B = 3, K = 288, N = 13;
    std::vector<float> x = random_buffer(B * K * M, 21, 1.5f);
    const RandomInt8Weights rw = random_int8_weights(N, K, 22);
    const Int8Params p = choose_int8_params(*std::min_element(x.begin(), x.end()), *std::max_element(x.begin(), x.end()));
    const Int8Weights w = rw.view(nullptr);
    std::vector<float> y(B * N * M), y_ref(B * N * M);
    int8_gemm_batched({y.data(), 1, M}, N * M, {x.data(), 1, M}, K * M, B, M, K, p, w);
    for (int64_t b = 0; b < B; ++b)
      int8_gemm_ref({y_ref.data() + b * N * M, 1, M}, {x.data() + b * K * M, 1, M}, M, K, p, w);
    for (int64_t i = 0; i < B * N * M; ++i) ASSERT_NEAR(y[i], y_ref[i], 1e-5f * (1.0f + std::abs(y_ref[i]))) << i;
  }
}

TEST(Int8Parity, LinearMatchesTorch) {
  manual_seed(0);
  nn::Linear fc({.in = 37, .out = 11});
  auto q = Int8Linear::from_linear(fc);
  for (const Shape& xs : {Shape{5, 37}, Shape{2, 3, 37}}) {
    Tensor x = randn(xs) * 3.0 + 0.5;
    Tensor y = (*q)(x);
    auto r = test::torch_run(std::string(kTorchPrelude) +
                                 "fc = nn.Linear(37, 11)\n"
                                 "fc.weight.data = w.clone(); fc.bias.data = b.clone()\n"
                                 "fc.qconfig = per_channel_dynamic_qconfig\n"
                                 "qfc = nnqd.Linear.from_float(fc)\n"
                                 "qw, qb = qfc._packed_params._weight_bias()\n"
                                 "out['q'] = qw.int_repr().long(); out['s'] = qw.q_per_channel_scales().float()\n"
                                 "out['zp'] = qw.q_per_channel_zero_points().long(); out['y'] = qfc(x)\n",
                             {{"w", fc.weight.detach()}, {"b", fc.bias.detach()}, {"x", x}});
    const std::vector<int8_t> ours = int8_values(q->w8.q);
    const Tensor theirs = r["q"].to(DType::i64).contiguous();
    ASSERT_EQ(int64_t(ours.size()), theirs.numel());
    int64_t mismatched = 0, at_min = 0;
    for (int64_t i = 0; i < theirs.numel(); ++i) {
      mismatched += ours[i] != theirs.data<int64_t>()[i];
      at_min += ours[i] == -128;
    }
    EXPECT_EQ(mismatched, 0) << "int8 weight values differ from torch's";
    EXPECT_GT(at_min, 0) << "the test weights should reach -128 (amax / 127.5 rounds -127.5 to even)";
    EXPECT_PARITY("weight scales", q->w8.scale, r["s"], 0.0);
    EXPECT_EQ(r["zp"].abs().sum().item<double>(), 0.0);
    EXPECT_PARITY("dynamic linear output", y, r["y"], 2e-6);
  }
}

TEST(Int8Parity, ActivationParamsMatchTorch) {
  for (auto [scale, shift] : {std::pair<float, float>{3, 0.5}, {1, 4}, {2, -5}, {1e-7f, 0}}) {
    manual_seed(7);
    Tensor x = randn({200}) * double(scale) + double(shift);
    const Int8Params p = backend_for(x).int8_choose_params(x);
    auto r = test::torch_run("s, z = torch._choose_qparams_per_tensor(x, reduce_range=True)\n"
                             "out['s'] = torch.tensor([s], dtype=torch.float32); out['z'] = torch.tensor([z])\n",
                             {{"x", x}});
    EXPECT_EQ(p.scale, r["s"].item<float>()) << "x * " << scale << " + " << shift;
    EXPECT_EQ(p.zero_point, r["z"].item<int64_t>()) << "x * " << scale << " + " << shift;
  }
}

TEST(Int8Parity, Conv2dMatchesTorchWeightsAndLinearRule) {
  // torch 1.13's dynamic Conv2d rounds its output to u8 with the input's scale and zero point (it runs the static
  // quantized convolution with those as output parameters); loom keeps Linear's float output. So: the same int8
  // weights and scales, the output equal to the convolution of the dequantized input and weight (Linear's rule),
  // and within half an input step of torch's output.
  struct Case {
    nn::Conv2dOptions o;
    Shape x;
  };
  for (const Case& c : {Case{{.in = 3, .out = 5, .kernel_size = 3, .padding = 1}, {2, 3, 6, 6}},
                        Case{{.in = 4, .out = 7, .kernel_size = {3, 2}, .stride = {2, 1}, .padding = {0, 1},
                              .dilation = {1, 2}}, {3, 4, 9, 7}}}) {
    manual_seed(1);
    nn::Conv2d conv(c.o);
    auto q = Int8Conv2d::from_conv(conv);
    Tensor x = randn(c.x);
    Tensor y = (*q)(x);
    const Int8Params p = backend_for(x).int8_choose_params(x);
    const auto& o = c.o;
    const std::string args = "stride=(" + std::to_string(o.stride.h) + "," + std::to_string(o.stride.w) + "), padding=(" +
                             std::to_string(o.padding.h) + "," + std::to_string(o.padding.w) + "), dilation=(" +
                             std::to_string(o.dilation.h) + "," + std::to_string(o.dilation.w) + ")";
    auto r = test::torch_run(
        std::string(kTorchPrelude) + "conv = nn.Conv2d(w.shape[1], w.shape[0], tuple(w.shape[2:]), " + args + ")\n" +
            "conv.weight.data = w.clone(); conv.bias.data = b.clone()\n"
            "conv.qconfig = per_channel_dynamic_qconfig\n"
            "qc = nnqd.Conv2d.from_float(conv)\n"
            "qw = qc.weight()\n"
            "out['q'] = qw.int_repr().long(); out['s'] = qw.q_per_channel_scales().float()\n"
            "out['torch'] = qc(x)\n"
            "xq = torch.quantize_per_tensor(x, float(ps[0]), int(pz[0]), torch.quint8)\n"
            "out['rule'] = F.conv2d(xq.dequantize().double(), qw.dequantize().double(), b.double(), " + args + ").float()\n",
        {{"w", conv.weight.detach()}, {"b", conv.bias.detach()}, {"x", x},
         {"ps", full({1}, double(p.scale))}, {"pz", full({1}, double(p.zero_point), {.dtype = DType::i64})}});
    const std::vector<int8_t> ours = int8_values(q->w8.q);
    const Tensor theirs = r["q"].to(DType::i64).contiguous();
    ASSERT_EQ(int64_t(ours.size()), theirs.numel());
    for (int64_t i = 0; i < theirs.numel(); ++i) ASSERT_EQ(ours[i], theirs.data<int64_t>()[i]) << "weight value " << i;
    EXPECT_PARITY("conv weight scales", q->w8.scale, r["s"], 0.0);
    EXPECT_PARITY("conv output (Linear's rule)", y, r["rule"], 2e-6);
    const double gap = (y - r["torch"]).abs().max().item<double>();
    EXPECT_LE(gap, 0.5 * p.scale * (1 + 1e-3)) << "torch's u8-rounded conv output is within half a step";
  }
}

TEST(Int8Model, QuantizeDynamicCnnAndReload) {
  manual_seed(3);
  auto model = models::make_model("cnn", {.channels = 1, .height = 12, .width = 12, .num_classes = 4, .widths = {}});
  model->eval();
  Tensor x = rand({6, 1, 12, 12});
  Tensor y_float;
  {
    NoGradGuard g;
    y_float = (*model)(x);
  }
  // The first convolution (1 x 3 x 3 multiply-adds per output) stays float by default; 0 quantizes it too.
  EXPECT_EQ(quantize_dynamic(*model), (std::vector<std::string>{"3", "7", "9"}));
  EXPECT_EQ((*model)[0]->name(), "Conv2d");
  const auto names = quantize_dynamic(*model, {.min_conv_reduction = 0});
  EXPECT_EQ(names, (std::vector<std::string>{"0"}));
  EXPECT_EQ((*model)[0]->name(), "DynamicQuantizedConv2d");
  EXPECT_EQ((*model)[3]->name(), "DynamicQuantizedConv2d");
  EXPECT_EQ((*model)[7]->name(), "DynamicQuantizedLinear");
  EXPECT_TRUE(quantize_dynamic(*model).empty()) << "already quantized layers are left alone";
  Tensor y_int8;
  {
    NoGradGuard g;
    y_int8 = (*model)(x);
  }
  const double err = (y_int8 - y_float).abs().max().item<double>(), top = y_float.abs().max().item<double>();
  EXPECT_LT(err, 0.05 * top) << "int8 logits within 5% of the largest float logit";
  EXPECT_GT(err, 0.0) << "the int8 model must not be running the float weights";

  const nn::StateDict sd = model->state_dict();
  EXPECT_TRUE(sd.contains("0.weight_int8") && sd.contains("0.weight_scale") && sd.contains("9.bias"));
  EXPECT_FALSE(sd.contains("0.weight"));
  EXPECT_EQ(sd.at("7.weight_int8").dtype(), DType::u8);
  EXPECT_EQ(int8_layers_in(sd), (std::vector<std::string>{"0", "3", "7", "9"}));
  // A fresh float model, prepared and loaded, computes the same logits.
  manual_seed(99);
  auto fresh = models::make_model("cnn", {.channels = 1, .height = 12, .width = 12, .num_classes = 4, .widths = {}});
  fresh->eval();
  prepare_int8(*fresh, int8_layers_in(sd));
  fresh->load_state_dict(sd);
  NoGradGuard g;
  EXPECT_TRUE(equal((*fresh)(x), y_int8));
  // Changing the weights after the first call refreshes the cached row sums.
  auto fc = std::dynamic_pointer_cast<Int8Linear>((*fresh)[9]);
  ASSERT_TRUE(fc);
  Tensor sums_before = fc->w8.row_sums().clone();
  fc->w8.q.copy_(zeros_like(fc->w8.q));
  EXPECT_EQ(fc->w8.row_sums().abs().sum().item<int64_t>(), 0);
  EXPECT_NE(sums_before.abs().sum().item<int64_t>(), 0);
}

TEST(Int8Model, RunsThroughTheBackendOnly) {
  const Device dev = test::install_strict_device();
  manual_seed(5);
  nn::Sequential m;
  m.push_back(nn::Conv2d({.in = 2, .out = 3, .kernel_size = 3, .padding = 1}));
  m.push_back(nn::Flatten());
  m.push_back(nn::Linear({.in = 3 * 5 * 5, .out = 4}));
  EXPECT_EQ(quantize_dynamic(m, {.min_conv_reduction = 0}).size(), 2u);
  Tensor x = randn({2, 2, 5, 5});
  Tensor y_host;
  {
    NoGradGuard g;
    y_host = m(x);
  }
  m.to(dev);
  const int64_t before = test::strict_backend().calls("int8_linear");
  NoGradGuard g;
  Tensor y = m(x.to(dev));
  EXPECT_EQ(test::strict_backend().calls("int8_linear") - before, 1 + 1) << "one call for the conv's batch, one for the Linear";
  EXPECT_TRUE(equal(y.to(Device{}), y_host));
}

TEST(Int8Model, Errors) {
  manual_seed(0);
  nn::Linear fc({.in = 4, .out = 2});
  auto q = Int8Linear::from_linear(fc);
  Tensor x = randn({3, 4});
  x.requires_grad_(true);
  EXPECT_THROW((*q)(x), Error);  // inference only
  {
    NoGradGuard g;
    EXPECT_THROW((*q)(randn({3, 5})), Error);  // wrong width
    Tensor bad = randn({2, 4});
    bad.data<float>()[3] = NAN;
    EXPECT_THROW((*q)(bad), Error);
  }
  {
    NoGradGuard g;
    nn::Linear diverged({.in = 4, .out = 2});
    diverged.weight.data<float>()[5] = NAN;
    EXPECT_THROW(Int8Linear::from_linear(diverged), Error);
  }
  EXPECT_THROW(Int8Conv2d({.in = 4, .out = 4, .kernel_size = 3, .groups = 2}), Error);
  nn::Sequential m;
  m.push_back(nn::Conv2d({.in = 4, .out = 4, .kernel_size = 1, .groups = 2}));
  m.push_back(nn::ReLU());
  EXPECT_TRUE(quantize_dynamic(m).empty()) << "grouped convolutions stay float";
  EXPECT_THROW(prepare_int8(m, {"1"}), Error);   // a ReLU
  EXPECT_THROW(prepare_int8(m, {"7"}), Error);   // no such layer
  EXPECT_THROW(prepare_int8(m, {"0"}), Error);   // grouped
}
