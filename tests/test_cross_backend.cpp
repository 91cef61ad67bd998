// The cross-backend op harness (after ggml's test-backend-ops): every case builds its inputs on the host from a
// fixed seed, moves them to the device under test, runs ops forward and backward there, and compares outputs and
// input gradients with the same case run on the CPU, within per-dtype tolerances. Two targets:
//   Strict: the strict test device (CPU kernels behind the Backend seam), so the harness runs everywhere and
//           its comparisons are exercised; HarnessSelfTest shows they fail on a wrong value;
//   Cuda:   the CUDA backend; without a GPU each case says "skipped: no GPU (<reason>)".
#include <gtest/gtest.h>

#include <cmath>
#include <functional>
#include <optional>
#include <sstream>
#include <string>
#include <vector>

#include "loom/loom.h"
#include "loom/models/gpt.h"
#include "loom/models/models.h"
#include "support/strict_backend.h"

using namespace loom;

namespace {

// Absolute and relative tolerance per dtype. f32: GPU sums run in another order than the CPU's.
struct Tol {
  double atol, rtol;
};
Tol tolerance(DType dt, bool bf16) {
  if (bf16) return {2e-3, 2e-3};
  if (dt == DType::f64) return {1e-9, 1e-9};
  return {1e-4, 1e-4};
}

// The first difference between two lists of host tensors beyond tolerance, or nothing.
std::optional<std::string> compare(const std::vector<Tensor>& ref, const std::vector<Tensor>& got, Tol tol) {
  if (ref.size() != got.size())
    return "got " + std::to_string(got.size()) + " outputs, expected " + std::to_string(ref.size());
  for (size_t i = 0; i < ref.size(); ++i) {
    std::ostringstream os;
    if (ref[i].defined() != got[i].defined()) {
      os << "output " << i << ": defined " << got[i].defined() << ", expected " << ref[i].defined();
      return os.str();
    }
    if (!ref[i].defined()) continue;
    if (ref[i].shape() != got[i].shape() || ref[i].dtype() != got[i].dtype()) {
      os << "output " << i << ": shape " << Shape(got[i].shape()) << " " << got[i].dtype() << ", expected "
         << Shape(ref[i].shape()) << " " << ref[i].dtype();
      return os.str();
    }
    const std::vector<double> a = ref[i].tolist(), b = got[i].tolist();
    const bool exact = is_integral(ref[i].dtype());
    for (size_t j = 0; j < a.size(); ++j) {
      const bool same_nan = std::isnan(a[j]) && std::isnan(b[j]);
      const bool ok = exact ? a[j] == b[j] : (same_nan || a[j] == b[j] || std::abs(a[j] - b[j]) <= tol.atol + tol.rtol * std::abs(a[j]));
      if (!ok) {
        os.precision(10);
        os << "output " << i << " element " << j << ": " << b[j] << ", expected " << a[j] << " (|diff| "
           << std::abs(a[j] - b[j]) << ")";
        return os.str();
      }
    }
  }
  return std::nullopt;
}

// What a case sees: the device, the float dtype, and inputs drawn from one seeded generator (the same sequence on
// every backend). finish() adds a random-weighted sum of the outputs, runs backward and returns the outputs then
// every leaf's gradient, all on the host.
struct Ctx {
  Ctx(Device d, DType t) : dev(d), dt(t) {}
  Device dev;
  DType dt;
  Generator g{1234};
  std::vector<Tensor> leaves;

  Tensor host(const Shape& s, double scale = 1.0) { return randn(s, {.dtype = dt}, &g) * scale; }
  Tensor leaf(const Shape& s, double scale = 1.0) {
    Tensor d = host(s, scale).to(dev).detach();
    d.requires_grad_();
    leaves.push_back(d);
    return d;
  }
  Tensor ints(int64_t lo, int64_t hi, const Shape& s) { return randint(lo, hi, s, {.dtype = DType::i64}, &g).to(dev); }

  std::vector<Tensor> finish(const std::vector<Tensor>& outs) {
    Tensor loss;
    for (const Tensor& o : outs) {
      if (!o.requires_grad()) continue;
      Tensor w = randn(o.shape(), {.dtype = o.dtype()}, &g).to(dev);
      Tensor term = (o * w).sum();
      loss = loss.defined() ? loss + term : term;
    }
    if (loss.defined()) loss.backward();
    std::vector<Tensor> r;
    for (const Tensor& o : outs) r.push_back(o.detach().to(Device{}));
    for (const Tensor& l : leaves) r.push_back(l.grad().defined() ? l.grad().to(Device{}) : Tensor());
    return r;
  }
};

struct Case {
  std::string name;
  bool f64;  // also run in float64
  bool bf16 = false;  // products in bf16 (autocast): looser tolerance
  std::function<std::vector<Tensor>(Ctx&)> run;
};

const std::vector<Case>& cases() {
  static const std::vector<Case> all = {
      {"unary_strided", true,
       false,
       [](Ctx& c) {
         Tensor x = c.leaf({3, 5, 7});
         Tensor t = x.transpose(0, 2);  // a strided view
         return c.finish({exp(t * 0.5), tanh(t), sigmoid(t), relu(t), gelu(t), silu(t), log(abs(t) + 1.0),
                          sqrt(abs(t) + 0.1), leaky_relu(t, 0.1), elu(t), softplus(t), square(t),
                          clamp(t, -0.5, 0.7), pow(t, 3.0), neg(t), sin(t), logical_not(t > 0.2).to(c.dt)});
       }},
      {"binary_broadcast", true, false,
       [](Ctx& c) {
         Tensor a = c.leaf({4, 1, 6}), b = c.leaf({5, 1});
         return c.finish({a + b, a - b, a * b, a / (abs(b) + 0.5), maximum(a, b), minimum(a, b),
                          pow(abs(a) + 0.5, b), (a > b).to(c.dt), where(a > b, a, b * 2.0), eq(a, a).to(c.dt),
                          a * 3.0 + 1.0});
       }},
      {"reduce", true, false,
       [](Ctx& c) {
         Tensor x = c.leaf({4, 6, 5});
         auto [mv, mi] = max(x, 1);
         return c.finish({sum(x), sum(x, {0, 2}), mean(x, {1}, true), amax(x, {2}), amin(x, {0}), mv, mi,
                          argmin(x.transpose(0, 1), 2), var(x, {1}), logsumexp(x, {2}), prod(x * 0.2 + 1.0, {2}),
                          sum(x.transpose(0, 2), {1})});
       }},
      {"softmax", true, false,
       [](Ctx& c) {
         Tensor x = c.leaf({3, 4, 9}, 2.0);
         return c.finish({softmax(x, 2), log_softmax(x, 1), softmax(x.transpose(1, 2), 1), log_softmax(x, 2)});
       }},
      {"matmul", true, false,
       [](Ctx& c) {
         Tensor a = c.leaf({17, 33}), b = c.leaf({33, 9}), p = c.leaf({3, 5, 7}), q = c.leaf({3, 7, 4});
         Tensor x = c.leaf({6, 10}), w = c.leaf({7, 10}), bias = c.leaf({7});
         return c.finish({mm(a, b), bmm(p, q), matmul(b.t(), a.t()), linear(x, w, bias), matmul(p, q[0])});
       }},
      {"autocast_bf16", false, true,
       [](Ctx& c) {
         Tensor x = c.leaf({19, 40}), w = c.leaf({13, 40}), bias = c.leaf({13});
         AutocastGuard bf(DType::bf16);
         return c.finish({linear(x, w, bias), matmul(x, w.t())});
       }},
      {"cross_entropy", true, false,
       [](Ctx& c) {
         Tensor logits = c.leaf({7, 11}, 2.0), spatial = c.leaf({2, 5, 4});
         Tensor weight = c.host({11}).abs().to(c.dev) + 0.5;
         Tensor t = c.ints(0, 11, {7}), ts = c.ints(0, 5, {2, 4});
         return c.finish({cross_entropy(logits, t), cross_entropy(logits, t, {.ignore_index = 3}),
                          cross_entropy(logits, t, {.label_smoothing = 0.1}),
                          cross_entropy(logits, t, {.weight = weight, .reduction = Reduction::Sum}),
                          cross_entropy(logits, t, {.weight = weight, .label_smoothing = 0.2}),
                          cross_entropy(spatial, ts), cross_entropy(logits, t, {.reduction = Reduction::None})});
       }},
      {"norms", true, false,
       [](Ctx& c) {
         Tensor x = c.leaf({6, 10}), w = c.leaf({10}), b = c.leaf({10}), y = c.leaf({2, 6, 3, 3});
         Tensor gw = c.leaf({6}), gb = c.leaf({6});
         return c.finish({layer_norm(x, {10}, w, b), layer_norm(x, {10}), group_norm(y, 3, gw, gb)});
       }},
      {"indexing", true, false,
       [](Ctx& c) {
         Tensor table = c.leaf({13, 8}), x = c.leaf({4, 9});
         Tensor idx = c.ints(0, 13, {3, 5}), cols = c.ints(0, 9, {5}), g_idx = c.ints(0, 9, {4, 3});
         Tensor src = c.leaf({4, 3});
         return c.finish({embedding(idx, table), index_select(x, 1, cols), gather(x, 1, g_idx),
                          scatter_add(x, 1, g_idx, src), index_add(table, 0, cols, c.leaf({5, 8}))});
       }},
      {"attention", true, false,
       [](Ctx& c) {
         Tensor q = c.leaf({2, 3, 9, 8}), k = c.leaf({2, 3, 9, 8}), v = c.leaf({2, 3, 9, 8});
         Tensor q5 = c.leaf({2, 3, 5, 8}), v6 = c.leaf({2, 3, 9, 6});
         Tensor keep = (c.host({9, 9}) > -0.5).to(c.dev);
         Tensor add = c.host({9, 9}).to(c.dev);
         return c.finish({scaled_dot_product_attention(q, k, v, {.is_causal = true}),
                          scaled_dot_product_attention(q, k, v, {.attn_mask = keep}),
                          scaled_dot_product_attention(q, k, v, {.attn_mask = add}),
                          scaled_dot_product_attention(q5, k, v6), scaled_dot_product_attention(q5, k, v, {.is_causal = true})});
       }},
      {"conv_pool", true, false,
       [](Ctx& c) {
         Tensor x = c.leaf({2, 3, 9, 9}), w = c.leaf({4, 3, 3, 3}), b = c.leaf({4}), w2 = c.leaf({5, 3, 2, 2});
         Tensor y = conv2d(x, w, b, {.padding = {1, 1}});
         return c.finish({y, max_pool2d(y), conv2d(x, w2, {}, {.stride = {2, 2}, .dilation = {2, 2}}),
                          max_pool2d(relu(y), {.kernel_size = {3, 3}, .stride = {2, 2}, .padding = {1, 1}})});
       }},
      {"random", true, false,
       [](Ctx& c) {
         Generator g1(7), g2(8);
         Tensor r = randn({5, 6}, {.dtype = c.dt, .device = c.dev}, &g1);
         Tensor u = rand({4, 3}, {.dtype = c.dt, .device = c.dev}, &g1);
         Tensor ri = randint(0, 100, {7}, {.dtype = DType::i64, .device = c.dev}, &g1);
         Tensor x = c.leaf({6, 6});
         return c.finish({r, u, ri, dropout(x, 0.3, true, &g2), arange(0.0, 10.0, 1.0, {.dtype = c.dt, .device = c.dev})});
       }},
      {"optimizers", true, false,
       [](Ctx& c) {
         Tensor p1 = c.host({5, 4}).to(c.dev).detach().requires_grad_(), p2 = c.host({7}).to(c.dev).detach().requires_grad_();
         Tensor p3 = c.host({3, 3}).to(c.dev).detach().requires_grad_();
         optim::AdamW adamw({p1}, {.lr = 0.05, .weight_decay = 0.1});
         optim::Adam adam({p2}, {.lr = 0.05, .amsgrad = true});
         optim::SGD sgd({p3}, {.lr = 0.1, .momentum = 0.9, .nesterov = true});
         for (int step = 0; step < 3; ++step) {
           for (Tensor p : {p1, p2, p3}) p.set_grad(c.host(p.shape()).to(c.dev));
           adamw.step(), adam.step(), sgd.step();
         }
         return c.finish({p1.detach(), p2.detach(), p3.detach()});
       }},
      // Whole training steps of two seed models (the W2 and W3 shapes, scaled down): loss, then the weights.
      {"cnn_step", false, false,
       [](Ctx& c) {
         manual_seed(0);
         auto m = models::make_model("cnn", {.channels = 1, .height = 14, .width = 14, .num_classes = 10, .widths = {}});
         m->to(c.dev);
         optim::Adam opt(m->parameters(), {.lr = 1e-2});
         Tensor x = c.host({4, 1, 14, 14}).to(c.dev), y = c.ints(0, 10, {4});
         Tensor loss = cross_entropy(m->forward(x), y);
         loss.backward();
         opt.step();
         std::vector<Tensor> outs = {loss.detach()};
         for (const auto& [k, p] : m->named_parameters()) outs.push_back(p.detach());
         return c.finish(outs);
       }},
      {"gpt_step", false, false,
       [](Ctx& c) {
         manual_seed(0);
         models::GPT m({.vocab_size = 16, .n_positions = 8, .n_embd = 16, .n_layer = 2, .n_head = 2});
         m.to(c.dev);
         optim::AdamW opt(m.parameters(), {.lr = 1e-2});
         Tensor idx = c.ints(0, 16, {2, 8});
         Tensor x = idx.narrow(1, 0, 7).contiguous(), y = idx.narrow(1, 1, 7).contiguous();
         Tensor loss = cross_entropy(m.forward(x).reshape({-1, 16}), y.reshape({-1}));
         loss.backward();
         opt.step();
         std::vector<Tensor> outs = {loss.detach()};
         for (const auto& [k, p] : m.named_parameters()) outs.push_back(p.detach());
         return c.finish(outs);
       }},
  };
  return all;
}

enum class Target { Strict, Cuda };

struct Param {
  size_t index;
  DType dt;
  Target target;
};

std::string param_name(const testing::TestParamInfo<Param>& info) {
  return cases()[info.param.index].name + (info.param.dt == DType::f64 ? "_f64" : "_f32");
}

std::vector<Param> params(Target t) {
  std::vector<Param> r;
  for (size_t i = 0; i < cases().size(); ++i) {
    r.push_back({i, DType::f32, t});
    if (cases()[i].f64) r.push_back({i, DType::f64, t});
  }
  return r;
}

class CrossBackend : public testing::TestWithParam<Param> {};

TEST_P(CrossBackend, MatchesCpu) {
  const Param p = GetParam();
  const Case& cs = cases()[p.index];
  Device dev;
  if (p.target == Target::Cuda) {
    if (!cuda::available()) GTEST_SKIP() << "skipped: no GPU (" << cuda::unavailable_reason() << ")";
    dev = cuda::device(0);
  } else {
    dev = test::install_strict_device();
  }
  Ctx ref{Device{}, p.dt};
  const std::vector<Tensor> want = cs.run(ref);
  Ctx got{dev, p.dt};
  const std::vector<Tensor> have = cs.run(got);
  const auto diff = compare(want, have, tolerance(p.dt, cs.bf16));
  EXPECT_FALSE(diff.has_value()) << cs.name << " on " << dev << ": " << diff.value_or("");
  if (p.target == Target::Strict) {
    EXPECT_GT(test::strict_backend().total_calls(), 0);
  }
}

INSTANTIATE_TEST_SUITE_P(Strict, CrossBackend, testing::ValuesIn(params(Target::Strict)), param_name);
INSTANTIATE_TEST_SUITE_P(Cuda, CrossBackend, testing::ValuesIn(params(Target::Cuda)), param_name);

// The comparison itself: a wrong value, shape, dtype or count is reported, and identical results pass.
TEST(CrossBackendHarness, ComparisonCatchesWrongResults) {
  Tensor a = tensor({1.0, 2.0, 3.0});
  const Tol f32 = tolerance(DType::f32, false);
  EXPECT_FALSE(compare({a}, {a.clone()}, f32).has_value());
  EXPECT_TRUE(compare({a}, {a + 1e-3}, f32).has_value());
  EXPECT_FALSE(compare({a}, {a + 1e-6}, f32).has_value());
  EXPECT_TRUE(compare({a}, {a.reshape({3, 1})}, f32).has_value());
  EXPECT_TRUE(compare({a}, {a.to(DType::f64)}, f32).has_value());
  EXPECT_TRUE(compare({a}, {a, a}, f32).has_value());
  EXPECT_TRUE(compare({a}, {Tensor()}, f32).has_value());
  Tensor i = tensor({1.0, 2.0}).to(DType::i64);
  EXPECT_TRUE(compare({i}, {i + 1}, f32).has_value());
  const auto msg = compare({a}, {a * 1.01}, f32);
  ASSERT_TRUE(msg.has_value());
  EXPECT_NE(msg->find("element 0"), std::string::npos) << *msg;
}

// A case whose device side differs from the CPU side (a kernel bug, simulated) fails the harness.
TEST(CrossBackendHarness, AWrongDeviceResultFails) {
  const Device dev = test::install_strict_device();
  auto run = [](Ctx& c) {
    Tensor x = c.leaf({4, 5});
    Tensor y = exp(x);
    if (c.dev != Device{}) y = y * (1.0 + 1e-3);  // the "bug"
    return c.finish({y});
  };
  Ctx ref{Device{}, DType::f32}, got{dev, DType::f32};
  EXPECT_TRUE(compare(run(ref), run(got), tolerance(DType::f32, false)).has_value());
}

}  // namespace
