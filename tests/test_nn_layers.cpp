// nn layers: float64 gradchecks of input and parameter gradients, and float32 parity with the same torch.nn
// module loaded with loom's weights (outputs, input gradients, every parameter gradient and the buffers).
#include <gtest/gtest.h>

#include <string>
#include <tuple>
#include <vector>

#include "loom/loom.h"
#include "support/gradcheck.h"
#include "support/torch_oracle.h"

using namespace loom;
using loom::test::rand64;
using loom::test::torch_run;

namespace {

struct Step {
  Tensor x;
  bool training = true;
};

// Runs `m` through `steps` (forward, then backward with a random upstream gradient), and the torch module
// built by `ctor` (with m's initial parameters and buffers copied in) through the same steps. Compares each
// step's output and input gradient, then the accumulated parameter gradients and the final buffers.
void expect_layer_parity(const std::string& what, nn::Module& m, const std::string& ctor,
                         const std::vector<Step>& steps, double rtol = 1e-5) {
  std::vector<test::Arg> args;
  std::string code = "m = " + ctor + "\nwith torch.no_grad():\n    pass\n";
  const auto params = m.named_parameters();
  const auto buffers = m.named_buffers();
  for (size_t i = 0; i < params.size(); ++i) {
    args.push_back({"p" + std::to_string(i), params[i].second.detach().clone()});
    code += "    m.get_parameter('" + params[i].first + "').copy_(p" + std::to_string(i) + ")\n";
  }
  for (size_t i = 0; i < buffers.size(); ++i) {
    args.push_back({"b" + std::to_string(i), buffers[i].second.detach().clone()});
    code += "    m.get_buffer('" + buffers[i].first + "').copy_(b" + std::to_string(i) + ")\n";
  }
  m.zero_grad(/*set_to_none=*/true);
  std::vector<Tensor> ys, gxs;
  for (size_t s = 0; s < steps.size(); ++s) {
    const std::string k = std::to_string(s);
    Tensor x = steps[s].x.detach().clone();
    const bool fx = is_floating(x.dtype());
    if (fx) x.requires_grad_(true);
    m.train(steps[s].training);
    Tensor y = m(x);
    Tensor g = randn(y.shape());
    y.backward(g);
    ys.push_back(y);
    gxs.push_back(fx ? x.grad() : Tensor());
    args.push_back({"x" + k, x.detach(), fx});
    args.push_back({"g" + k, g});
    code += std::string("m.train(") + (steps[s].training ? "True" : "False") + ")\n";
    code += "y = m(x" + k + ")\ny.backward(g" + k + ")\nout['y" + k + "'] = y\n";
    if (fx) code += "out['gx" + k + "'] = x" + k + ".grad\n";
  }
  for (size_t i = 0; i < params.size(); ++i)
    code += "out['gp" + std::to_string(i) + "'] = m.get_parameter('" + params[i].first + "').grad\n";
  for (size_t i = 0; i < buffers.size(); ++i)
    code += "out['b" + std::to_string(i) + "'] = m.get_buffer('" + buffers[i].first + "')\n";
  auto r = torch_run(code, args);
  for (size_t s = 0; s < steps.size(); ++s) {
    const std::string k = std::to_string(s);
    EXPECT_PARITY(what + " output, step " + k, ys[s], r["y" + k], rtol);
    if (gxs[s].defined() || r.count("gx" + k)) {
      EXPECT_PARITY(what + " input grad, step " + k, gxs[s], r["gx" + k], rtol);
    }
  }
  for (size_t i = 0; i < params.size(); ++i) {
    const Tensor ours = params[i].second.grad();
    const std::string key = "gp" + std::to_string(i);
    if (!ours.defined() && !r.count(key)) continue;  // neither got a gradient
    EXPECT_PARITY(what + " grad of " + params[i].first, ours, r[key], rtol);
  }
  for (size_t i = 0; i < buffers.size(); ++i)
    EXPECT_PARITY(what + " buffer " + buffers[i].first, buffers[i].second, r["b" + std::to_string(i)], rtol);
}

// Gradcheck of a module in float64: in[0] is the input, in[1..] replace the module's parameters in order.
void expect_module_gradcheck(nn::Module& m, const std::vector<Tensor*>& slots, const Tensor& x) {
  m.to(DType::f64);
  std::vector<Tensor> inputs{x};
  for (Tensor* s : slots) inputs.push_back(s->detach().clone().requires_grad_(true));
  EXPECT_GRADCHECK(
      [&](const std::vector<Tensor>& in) {
        for (size_t i = 0; i < slots.size(); ++i) *slots[i] = in[i + 1];
        return m(in[0]);
      },
      inputs);
}

// Distinct, well separated values: max pooling then has no ties within gradcheck's eps.
Tensor distinct64(const Shape& s) {
  return (randperm(numel(s)).to(DType::f64) * 0.1 - 1.0).reshape(s).detach().requires_grad_(true);
}

}  // namespace

// ---------------------------------------------------------------- gradchecks (float64)

TEST(NNLayers, LinearGradcheck) {
  manual_seed(1);
  nn::Linear fc({.in = 4, .out = 3});
  expect_module_gradcheck(fc, {&fc.weight, &fc.bias}, rand64({2, 4}));
  expect_module_gradcheck(fc, {&fc.weight, &fc.bias}, rand64({2, 3, 4}));
  nn::Linear nb({.in = 4, .out = 2, .bias = false});
  expect_module_gradcheck(nb, {&nb.weight}, rand64({3, 4}));
}

TEST(NNLayers, Conv2dGradcheck) {
  manual_seed(2);
  nn::Conv2d conv({.in = 4, .out = 4, .kernel_size = {3, 2}, .stride = {2, 1}, .padding = 1, .dilation = {1, 2},
                   .groups = 2});
  expect_module_gradcheck(conv, {&conv.weight, &conv.bias}, rand64({2, 4, 5, 6}));
  nn::Conv2d plain({.in = 2, .out = 3, .kernel_size = 3, .bias = false});
  expect_module_gradcheck(plain, {&plain.weight}, rand64({2, 5, 4}));  // unbatched (C, H, W)
}

TEST(NNLayers, Conv1dGradcheck) {
  manual_seed(3);
  nn::Conv1d conv({.in = 2, .out = 4, .kernel_size = 3, .stride = 2, .padding = 1, .dilation = 1, .groups = 2});
  expect_module_gradcheck(conv, {&conv.weight, &conv.bias}, rand64({2, 2, 7}));
}

TEST(NNLayers, BatchNormTrainingGradcheck) {
  manual_seed(4);
  nn::BatchNorm2d bn({.num_features = 3});
  expect_module_gradcheck(bn, {&bn.weight, &bn.bias}, rand64({3, 3, 2, 3}));
  nn::BatchNorm1d bn1({.num_features = 4});
  expect_module_gradcheck(bn1, {&bn1.weight, &bn1.bias}, rand64({5, 4}));
  expect_module_gradcheck(bn1, {&bn1.weight, &bn1.bias}, rand64({2, 4, 3}));
  nn::BatchNorm2d plain({.num_features = 2, .affine = false});
  expect_module_gradcheck(plain, {}, rand64({2, 2, 3, 3}));
}

TEST(NNLayers, BatchNormEvalGradcheck) {
  manual_seed(5);
  nn::BatchNorm2d bn({.num_features = 3});
  bn.to(DType::f64);
  {
    NoGradGuard g;
    bn.running_mean.copy_(rand64({3}, -1, 1, false));
    bn.running_var.copy_(rand64({3}, 0.5, 2, false));
  }
  bn.eval();
  expect_module_gradcheck(bn, {&bn.weight, &bn.bias}, rand64({2, 3, 2, 2}));
}

TEST(NNLayers, LayerNormGradcheck) {
  manual_seed(6);
  nn::LayerNorm ln({.normalized_shape = {3, 4}});
  expect_module_gradcheck(ln, {&ln.weight, &ln.bias}, rand64({2, 3, 4}));
  nn::LayerNorm plain({.normalized_shape = {5}, .elementwise_affine = false});
  expect_module_gradcheck(plain, {}, rand64({3, 5}));
}

TEST(NNLayers, GroupNormGradcheck) {
  manual_seed(7);
  nn::GroupNorm gn({.num_groups = 3, .num_channels = 6});
  expect_module_gradcheck(gn, {&gn.weight, &gn.bias}, rand64({2, 6, 3, 2}));
  nn::GroupNorm one({.num_groups = 1, .num_channels = 4, .affine = false});
  expect_module_gradcheck(one, {}, rand64({3, 4}));
}

TEST(NNLayers, EmbeddingGradcheck) {
  manual_seed(8);
  nn::Embedding emb({.num_embeddings = 5, .embedding_dim = 3});
  Tensor idx = tensor(std::vector<int64_t>{0, 4, 2, 2, 4, 1}, {2, 3});
  emb.to(DType::f64);
  EXPECT_GRADCHECK(
      [&](const std::vector<Tensor>& in) {
        emb.weight = in[0];
        return emb(idx);
      },
      {emb.weight.detach().clone().requires_grad_(true)});
}

TEST(NNLayers, EmbeddingPaddingRowGetsNoGradient) {
  manual_seed(9);
  nn::Embedding emb({.num_embeddings = 4, .embedding_dim = 2, .padding_idx = 1});
  Tensor idx = tensor(std::vector<int64_t>{1, 3, 1, 3, 0}, {5});
  emb(idx).sum().backward();
  EXPECT_TRUE(equal(emb.weight.grad(), tensor({1, 1, 0, 0, 0, 0, 2, 2}, {4, 2})));
  EXPECT_THROW(emb(tensor(std::vector<int64_t>{4}, {1})), Error);  // out of range
  EXPECT_THROW(emb(ones({2})), Error);                            // float indices
}

TEST(NNLayers, ActivationsAndPoolingGradcheck) {
  manual_seed(10);
  std::vector<std::pair<std::string, std::shared_ptr<nn::Module>>> acts{
      {"ReLU", std::make_shared<nn::ReLU>()},
      {"LeakyReLU", std::make_shared<nn::LeakyReLU>(nn::LeakyReLUOptions{0.2})},
      {"ELU", std::make_shared<nn::ELU>(nn::ELUOptions{0.7})},
      {"GELU", std::make_shared<nn::GELU>()},
      {"GELU tanh", std::make_shared<nn::GELU>(nn::GELUOptions{"tanh"})},
      {"SiLU", std::make_shared<nn::SiLU>()},
      {"Sigmoid", std::make_shared<nn::Sigmoid>()},
      {"Tanh", std::make_shared<nn::Tanh>()},
      {"Softmax", std::make_shared<nn::Softmax>(nn::SoftmaxOptions{1})},
      {"LogSoftmax", std::make_shared<nn::LogSoftmax>(nn::SoftmaxOptions{0})},
      {"Flatten", std::make_shared<nn::Flatten>()},
      {"Identity", std::make_shared<nn::Identity>()},
      {"AvgPool2d", std::make_shared<nn::AvgPool2d>(nn::AvgPool2dOptions{.kernel_size = 2, .stride = 1})},
      {"AdaptiveAvgPool2d", std::make_shared<nn::AdaptiveAvgPool2d>(nn::AdaptiveAvgPool2dOptions{{2, 3}})}};
  for (auto& [name, m] : acts) {
    SCOPED_TRACE(name);
    EXPECT_GRADCHECK([&](const std::vector<Tensor>& in) { return (*m)(in[0]); }, {rand64({2, 3, 4, 5}, -2, 2)});
  }
  nn::MaxPool2d pool({.kernel_size = 2, .stride = 2, .padding = 1});
  EXPECT_GRADCHECK([&](const std::vector<Tensor>& in) { return pool(in[0]); }, {distinct64({2, 2, 5, 4})});
}

// ---------------------------------------------------------------- dropout

TEST(NNLayers, DropoutIdentityWhenOffOrPZero) {
  Tensor x = randn({4, 5});
  nn::Dropout off({.p = 0.0});
  EXPECT_TRUE(off(x).is_same(x));
  nn::Dropout d({.p = 0.5});
  d.eval();
  EXPECT_TRUE(d(x).is_same(x));
  nn::Dropout all({.p = 1.0});
  EXPECT_TRUE(equal(all(x), zeros({4, 5})));
  EXPECT_THROW(nn::Dropout({.p = 1.5}), Error);
}

TEST(NNLayers, DropoutScalesKeptValuesAndZeroesAboutP) {
  manual_seed(11);
  const double p = 0.3;
  nn::Dropout d({.p = p});
  Tensor x = (rand({200, 500}) + 1.0).requires_grad_(true);  // no zeros in x
  Tensor y = d(x);
  y.sum().backward();
  const auto xv = x.tolist(), yv = y.tolist(), gv = x.grad().tolist();
  int64_t zeros_n = 0;
  bool ok = true;
  for (size_t i = 0; i < xv.size(); ++i) {
    if (yv[i] == 0.0) {
      ++zeros_n;
      ok = ok && gv[i] == 0.0;  // a dropped element passes no gradient
    } else {
      ok = ok && std::abs(yv[i] - xv[i] / (1 - p)) < 1e-5 && std::abs(gv[i] - 1 / (1 - p)) < 1e-6;
    }
  }
  EXPECT_TRUE(ok);
  EXPECT_NEAR(double(zeros_n) / double(xv.size()), p, 0.01);
  // Same generator state, same mask.
  Generator g1(5), g2(5);
  EXPECT_TRUE(equal(dropout(x, p, true, &g1), dropout(x, p, true, &g2)));
}

TEST(NNLayers, DropoutFixedMaskGradcheck) {
  EXPECT_GRADCHECK(
      [](const std::vector<Tensor>& in) {
        Generator gen(3);  // a fresh generator per call: the same mask for every evaluation
        return dropout(in[0], 0.4, true, &gen);
      },
      {rand64({3, 7})});
}

// ---------------------------------------------------------------- parity with torch (float32)

TEST(NNLayers, LinearParity) {
  manual_seed(20);
  nn::Linear fc({.in = 5, .out = 3});
  expect_layer_parity("Linear", fc, "nn.Linear(5, 3)", {{randn({4, 5})}, {randn({2, 4, 5})}});
  nn::Linear nb({.in = 5, .out = 2, .bias = false});
  expect_layer_parity("Linear no bias", nb, "nn.Linear(5, 2, bias=False)", {{randn({3, 5})}});
}

TEST(NNLayers, Conv2dParity) {
  manual_seed(21);
  nn::Conv2d conv({.in = 4, .out = 6, .kernel_size = {3, 2}, .stride = {2, 1}, .padding = {1, 0}, .dilation = {1, 2},
                   .groups = 2});
  expect_layer_parity("Conv2d", conv,
                      "nn.Conv2d(4, 6, (3, 2), stride=(2, 1), padding=(1, 0), dilation=(1, 2), groups=2)",
                      {{randn({2, 4, 9, 8})}});
  nn::Conv2d plain({.in = 3, .out = 5, .kernel_size = 3, .padding = 1, .bias = false});
  expect_layer_parity("Conv2d unbatched", plain, "nn.Conv2d(3, 5, 3, padding=1, bias=False)", {{randn({3, 6, 6})}});
}

TEST(NNLayers, Conv1dParity) {
  manual_seed(22);
  nn::Conv1d conv({.in = 4, .out = 6, .kernel_size = 3, .stride = 2, .padding = 2, .dilation = 2, .groups = 2});
  expect_layer_parity("Conv1d", conv, "nn.Conv1d(4, 6, 3, stride=2, padding=2, dilation=2, groups=2)",
                      {{randn({2, 4, 11})}, {randn({4, 9})}});
}

TEST(NNLayers, PoolingParity) {
  manual_seed(23);
  nn::MaxPool2d mp({.kernel_size = 3, .stride = 2, .padding = 1});
  expect_layer_parity("MaxPool2d", mp, "nn.MaxPool2d(3, stride=2, padding=1)", {{randn({2, 3, 7, 6})}});
  nn::MaxPool2d ceil({.kernel_size = 2, .ceil_mode = true});
  expect_layer_parity("MaxPool2d ceil", ceil, "nn.MaxPool2d(2, ceil_mode=True)", {{randn({3, 5, 5})}});
  nn::AvgPool2d ap({.kernel_size = 3, .stride = 2, .padding = 1, .count_include_pad = false});
  expect_layer_parity("AvgPool2d", ap, "nn.AvgPool2d(3, stride=2, padding=1, count_include_pad=False)",
                      {{randn({2, 3, 7, 6})}});
  nn::AdaptiveAvgPool2d gap({.output_size = {3, 2}});
  expect_layer_parity("AdaptiveAvgPool2d", gap, "nn.AdaptiveAvgPool2d((3, 2))", {{randn({2, 3, 7, 5})}});
}

TEST(NNLayers, ActivationsParity) {
  manual_seed(24);
  const std::vector<std::tuple<std::string, std::shared_ptr<nn::Module>>> cases{
      {"nn.ReLU()", std::make_shared<nn::ReLU>()},
      {"nn.LeakyReLU(0.2)", std::make_shared<nn::LeakyReLU>(nn::LeakyReLUOptions{0.2})},
      {"nn.ELU(0.7)", std::make_shared<nn::ELU>(nn::ELUOptions{0.7})},
      {"nn.GELU()", std::make_shared<nn::GELU>()},
      {"nn.GELU(approximate='tanh')", std::make_shared<nn::GELU>(nn::GELUOptions{"tanh"})},
      {"nn.SiLU()", std::make_shared<nn::SiLU>()},
      {"nn.Sigmoid()", std::make_shared<nn::Sigmoid>()},
      {"nn.Tanh()", std::make_shared<nn::Tanh>()},
      {"nn.Softmax(dim=1)", std::make_shared<nn::Softmax>(nn::SoftmaxOptions{1})},
      {"nn.LogSoftmax(dim=-1)", std::make_shared<nn::LogSoftmax>(nn::SoftmaxOptions{-1})},
      {"nn.Flatten()", std::make_shared<nn::Flatten>()},
      {"nn.Flatten(0, 1)", std::make_shared<nn::Flatten>(nn::FlattenOptions{0, 1})},
      {"nn.Identity()", std::make_shared<nn::Identity>()},
      {"nn.Dropout(0.0)", std::make_shared<nn::Dropout>(nn::DropoutOptions{0.0})}};
  for (const auto& [ctor, m] : cases) expect_layer_parity(ctor, *m, ctor, {{randn({3, 4, 5}) * 2.0}});
  // Dropout in eval mode is the identity in both.
  nn::Dropout d({.p = 0.5});
  expect_layer_parity("Dropout eval", d, "nn.Dropout(0.5)", {{randn({3, 4}), /*training=*/false}});
}

TEST(NNLayers, BatchNorm2dParityTwoStepsThenEval) {
  manual_seed(25);
  nn::BatchNorm2d bn({.num_features = 3});
  {
    NoGradGuard g;  // non-trivial affine parameters
    bn.weight.copy_(rand({3}) + 0.5);
    bn.bias.copy_(randn({3}));
  }
  expect_layer_parity("BatchNorm2d", bn, "nn.BatchNorm2d(3)",
                      {{randn({4, 3, 5, 5}) * 2.0 + 1.0}, {randn({4, 3, 5, 5})}, {randn({2, 3, 5, 5}), false}});
  EXPECT_EQ(bn.num_batches_tracked.item(), 2.0);
}

TEST(NNLayers, BatchNormOptionsParity) {
  manual_seed(26);
  nn::BatchNorm2d cumulative({.num_features = 2, .eps = 1e-3, .momentum = std::nullopt});
  expect_layer_parity("BatchNorm2d momentum=None", cumulative, "nn.BatchNorm2d(2, eps=1e-3, momentum=None)",
                      {{randn({3, 2, 4, 4})},
                       {randn({3, 2, 4, 4}) + 2.0},
                       {randn({3, 2, 4, 4}) * 3.0},
                       {randn({2, 2, 4, 4}), false}});
  nn::BatchNorm2d no_stats({.num_features = 2, .track_running_stats = false});
  expect_layer_parity("BatchNorm2d no running stats", no_stats, "nn.BatchNorm2d(2, track_running_stats=False)",
                      {{randn({3, 2, 4, 4})}, {randn({3, 2, 4, 4}), false}});
  nn::BatchNorm1d plain({.num_features = 4, .momentum = 0.3, .affine = false});
  expect_layer_parity("BatchNorm1d affine=False", plain, "nn.BatchNorm1d(4, momentum=0.3, affine=False)",
                      {{randn({8, 4})}, {randn({3, 4, 6})}, {randn({5, 4}), false}});
}

TEST(NNLayers, LayerNormParity) {
  manual_seed(27);
  nn::LayerNorm ln({.normalized_shape = {4, 5}, .eps = 1e-6});
  {
    NoGradGuard g;
    ln.weight.copy_(randn({4, 5}));
    ln.bias.copy_(randn({4, 5}));
  }
  expect_layer_parity("LayerNorm", ln, "nn.LayerNorm((4, 5), eps=1e-6)", {{randn({2, 3, 4, 5}) * 3.0 + 1.0}});
  nn::LayerNorm plain({.normalized_shape = {16}, .elementwise_affine = false});
  expect_layer_parity("LayerNorm no affine", plain, "nn.LayerNorm(16, elementwise_affine=False)", {{randn({7, 16})}});
}

TEST(NNLayers, GroupNormParity) {
  manual_seed(28);
  nn::GroupNorm gn({.num_groups = 2, .num_channels = 6});
  {
    NoGradGuard g;
    gn.weight.copy_(randn({6}));
    gn.bias.copy_(randn({6}));
  }
  expect_layer_parity("GroupNorm", gn, "nn.GroupNorm(2, 6)", {{randn({3, 6, 4, 5}) + 0.5}});
  nn::GroupNorm plain({.num_groups = 3, .num_channels = 3, .eps = 1e-3, .affine = false});
  expect_layer_parity("GroupNorm no affine", plain, "nn.GroupNorm(3, 3, eps=1e-3, affine=False)", {{randn({4, 3, 7})}});
}

TEST(NNLayers, EmbeddingParity) {
  manual_seed(29);
  nn::Embedding emb({.num_embeddings = 7, .embedding_dim = 4, .padding_idx = 2});
  Tensor idx = tensor(std::vector<int64_t>{2, 0, 6, 2, 3, 3, 1, 6}, {2, 4});
  expect_layer_parity("Embedding", emb, "nn.Embedding(7, 4, padding_idx=2)", {{idx}, {idx.slice(1, 1, 3)}});
}

TEST(NNLayers, SeedCnnParity) {
  manual_seed(30);
  nn::Sequential cnn(nn::Conv2d({.in = 1, .out = 4, .kernel_size = 3, .padding = 1}),
                     nn::BatchNorm2d({.num_features = 4}), nn::ReLU(), nn::MaxPool2d({.kernel_size = 2}),
                     nn::Conv2d({.in = 4, .out = 8, .kernel_size = 3}), nn::GELU(),
                     nn::AdaptiveAvgPool2d({.output_size = 2}),
                     nn::Flatten(), nn::Dropout({.p = 0.0}), nn::Linear({.in = 32, .out = 10}),
                     nn::LogSoftmax({.dim = 1}));
  expect_layer_parity("seed CNN", cnn,
                      "nn.Sequential(nn.Conv2d(1, 4, 3, padding=1), nn.BatchNorm2d(4), nn.ReLU(), nn.MaxPool2d(2), "
                      "nn.Conv2d(4, 8, 3), nn.GELU(), nn.AdaptiveAvgPool2d(2), nn.Flatten(), nn.Dropout(0.0), "
                      "nn.Linear(32, 10), nn.LogSoftmax(dim=1))",
                      {{randn({4, 1, 12, 12})}, {randn({4, 1, 12, 12})}, {randn({2, 1, 12, 12}), false}});
}

// Inputs above the kernels' single-thread threshold, so the OpenMP paths (per-thread weight-gradient sums
// in layer/group norm) are the ones compared.
TEST(NNLayers, NormsLargeInputsParity) {
  manual_seed(31);
  nn::BatchNorm2d bn({.num_features = 8});
  expect_layer_parity("BatchNorm2d large", bn, "nn.BatchNorm2d(8)", {{randn({8, 8, 24, 24})}});
  nn::LayerNorm ln({.normalized_shape = {128}});
  expect_layer_parity("LayerNorm large", ln, "nn.LayerNorm(128)", {{randn({4, 100, 128})}});
  nn::GroupNorm gn({.num_groups = 4, .num_channels = 16});
  expect_layer_parity("GroupNorm large", gn, "nn.GroupNorm(4, 16)", {{randn({4, 16, 24, 24})}});
}
