// The fused recurrent layer (one GEMM per step, fused gate kernels, one BPTT node) against the op-by-op reference
// recurrence on odd sizes: outputs, final states and every gradient, in float32 and float64. Also the vectorised
// gate activations against libm.
#include <gtest/gtest.h>

#include <cmath>
#include <limits>
#include <string>
#include <vector>

#include "loom/loom.h"
#include "loom/backend/cpu/rnn_kernels.h"
#include "loom/nn/rnn_reference.h"
#include "support/torch_oracle.h"
#include "test_rnn_helpers.h"

using namespace loom;
using loom::test::parity_close;

namespace {

struct LayerCase {
  nn::RNNMode mode;
  int64_t T, N, I, H;
  bool reverse = false, batch_first = false, bias = true, states = true;
  std::vector<int64_t> lengths = {};
};

// y, h_n, c_n, then the gradients of x, h0, c0, w_ih, w_hh, b_ih, b_hh (undefined where absent).
std::vector<Tensor> run_layer(const LayerCase& c, const std::vector<Tensor>& leaves, const std::vector<Tensor>& ups,
                              bool reference) {
  std::vector<Tensor> in;
  for (const Tensor& t : leaves) in.push_back(t.defined() ? t.detach().clone().requires_grad_(true) : Tensor());
  const nn::RNNLayerArgs a{.mode = c.mode, .x = in[0], .h0 = in[1], .c0 = in[2], .w_ih = in[3], .w_hh = in[4],
                           .b_ih = in[5], .b_hh = in[6],
                           .lengths = c.lengths.empty() ? Tensor() : test::lengths_of(c.lengths),
                           .reverse = c.reverse, .batch_first = c.batch_first};
  nn::RNNLayerOut r = reference ? nn::rnn_layer_reference(a) : nn::rnn_layer(a);
  Tensor loss = (r.y * ups[0]).sum() + (r.h_n * ups[1]).sum();
  if (r.c_n.defined()) loss = loss + (r.c_n * ups[2]).sum();
  loss.backward();
  std::vector<Tensor> out{r.y, r.h_n, r.c_n};
  for (const Tensor& t : in) out.push_back(t.defined() ? t.grad() : Tensor());
  return out;
}

void expect_fused_matches_reference(const LayerCase& c, DType dt, double rtol) {
  const std::string what = std::string(nn::rnn_mode_name(c.mode)) + (c.reverse ? " reverse" : "") +
                           (c.batch_first ? " batch_first" : "") + (c.bias ? "" : " no-bias") +
                           (c.lengths.empty() ? "" : " lengths") + (dt == DType::f64 ? " f64" : " f32");
  SCOPED_TRACE(what);
  const int64_t GH = nn::rnn_gate_count(c.mode) * c.H;
  const bool lstm = c.mode == nn::RNNMode::LSTM;
  auto r = [&](const Shape& s) { return (rand(s, {.dtype = dt}) * 2.0 - 1.0).detach(); };
  // Weights in PyTorch's init range keep the pre-activations out of deep saturation, where 1 - tanh^2 cancels.
  const double k = 1.0 / std::sqrt(double(c.H));
  const std::vector<Tensor> leaves{r(c.batch_first ? Shape{c.N, c.T, c.I} : Shape{c.T, c.N, c.I}),
                                   c.states ? r({c.N, c.H}) : Tensor(),
                                   c.states && lstm ? r({c.N, c.H}) : Tensor(),
                                   (r({GH, c.I}) * k).detach(),
                                   (r({GH, c.H}) * k).detach(),
                                   c.bias ? r({GH}) : Tensor(),
                                   c.bias ? r({GH}) : Tensor()};
  const Shape ys = c.batch_first ? Shape{c.N, c.T, c.H} : Shape{c.T, c.N, c.H};
  const std::vector<Tensor> ups{r(ys), r({c.N, c.H}), r({c.N, c.H})};
  const auto fast = run_layer(c, leaves, ups, false), ref = run_layer(c, leaves, ups, true);
  const char* names[] = {"y", "h_n", "c_n", "grad x", "grad h0", "grad c0", "grad w_ih", "grad w_hh", "grad b_ih",
                         "grad b_hh"};
  for (size_t i = 0; i < fast.size(); ++i) {
    ASSERT_EQ(fast[i].defined(), ref[i].defined()) << names[i];
    if (fast[i].defined()) {
      EXPECT_TRUE(parity_close(fast[i], ref[i], rtol)) << names[i];
    }
  }
}

const std::vector<nn::RNNMode> kModes{nn::RNNMode::RNN_TANH, nn::RNNMode::RNN_RELU, nn::RNNMode::LSTM,
                                      nn::RNNMode::GRU};

}  // namespace

TEST(RnnReference, GateActivationsMatchLibm) {
  // Dense sweep over the range where the gates are not saturated, plus the extremes and specials.
  double worst_sig = 0, worst_tanh = 0;
  for (int i = -200000; i <= 200000; ++i) {
    const float x = float(i) * 1e-4f;
    const double s = 1.0 / (1.0 + std::exp(-double(x))), t = std::tanh(double(x));
    worst_sig = std::max(worst_sig, std::abs(cpu::rnn_detail::gate_sigmoid(x) - s) / s);
    worst_tanh = std::max(worst_tanh, std::abs(cpu::rnn_detail::gate_tanh(x) - t) / std::max(std::abs(t), 1e-30));
  }
  EXPECT_LT(worst_sig, 4e-7);
  EXPECT_LT(worst_tanh, 4e-7);
  EXPECT_EQ(cpu::rnn_detail::gate_sigmoid(200.0f), 1.0f);
  EXPECT_LT(cpu::rnn_detail::gate_sigmoid(-200.0f), 1e-37f);
  EXPECT_EQ(cpu::rnn_detail::gate_tanh(50.0f), 1.0f);
  EXPECT_EQ(cpu::rnn_detail::gate_tanh(-50.0f), -1.0f);
  EXPECT_EQ(cpu::rnn_detail::gate_tanh(0.0f), 0.0f);
  EXPECT_EQ(cpu::rnn_detail::gate_sigmoid(std::numeric_limits<float>::infinity()), 1.0f);
  EXPECT_TRUE(std::isnan(cpu::rnn_detail::gate_sigmoid(std::numeric_limits<float>::quiet_NaN())));
  EXPECT_TRUE(std::isnan(cpu::rnn_detail::gate_tanh(std::numeric_limits<float>::quiet_NaN())));
}

TEST(RnnReference, LayerEveryModeDirectionLayoutAndLengths) {
  manual_seed(1);
  for (nn::RNNMode mode : kModes)
    for (int v = 0; v < 8; ++v) {
      LayerCase c{.mode = mode, .T = 7, .N = 5, .I = 9, .H = 13, .reverse = bool(v & 1), .batch_first = bool(v & 2)};
      if (v & 4) c.lengths = {4, 7, 1, 6, 2};
      expect_fused_matches_reference(c, DType::f32, 1e-5);
      expect_fused_matches_reference(c, DType::f64, 1e-12);
    }
}

TEST(RnnReference, NoBiasAndZeroInitialStates) {
  manual_seed(2);
  for (nn::RNNMode mode : kModes) {
    expect_fused_matches_reference({.mode = mode, .T = 3, .N = 2, .I = 5, .H = 7, .bias = false}, DType::f32, 1e-5);
    expect_fused_matches_reference({.mode = mode, .T = 6, .N = 3, .I = 1, .H = 3, .reverse = true, .states = false,
                                    .lengths = {6, 3, 5}},
                                   DType::f64, 1e-12);
  }
}

// Big enough that the gate kernels split batch rows across threads.
TEST(RnnReference, ThreadedGateKernels) {
  manual_seed(3);
  std::vector<int64_t> lengths(33);
  for (int64_t i = 0; i < 33; ++i) lengths[size_t(i)] = 1 + (i * 7) % 5;
  for (nn::RNNMode mode : {nn::RNNMode::LSTM, nn::RNNMode::GRU})
    expect_fused_matches_reference({.mode = mode, .T = 5, .N = 33, .I = 17, .H = 131, .batch_first = true,
                                    .lengths = lengths},
                                   DType::f32, 1e-5);
  expect_fused_matches_reference({.mode = nn::RNNMode::RNN_TANH, .T = 4, .N = 65, .I = 7, .H = 259, .reverse = true},
                                 DType::f32, 1e-5);
}

// The whole module with use_reference on and off: layers, both directions, dropout off.
TEST(RnnReference, ModulesMatchReferenceImplementation) {
  manual_seed(4);
  for (nn::RNNMode mode : kModes) {
    const test::RnnCase c{.mode = mode, .layers = 2, .bidirectional = true, .batch_first = true};
    SCOPED_TRACE(test::case_name(c));
    auto m = test::make_rnn(c, 5, 9);
    const Tensor x = test::seq_input(c, 6, 4, 5, DType::f32), len = test::lengths_of({6, 2, 5, 1});
    const Tensor h0 = randn({4, 4, 9}), c0 = randn({4, 4, 9});
    std::vector<std::vector<Tensor>> results;
    for (bool reference : {false, true}) {
      m->use_reference = reference;
      m->zero_grad(true);
      Tensor xi = x.clone().requires_grad_(true);
      nn::LSTMOutput r = test::call(*m, xi, h0, mode == nn::RNNMode::LSTM ? c0 : Tensor(), len);
      Tensor loss = (r.output * r.output).sum() + r.h_n.sum() * 0.5;
      if (r.c_n.defined()) loss = loss + r.c_n.sum() * 0.25;
      loss.backward();
      std::vector<Tensor> got{r.output, r.h_n, xi.grad()};
      if (r.c_n.defined()) got.push_back(r.c_n);
      for (const Tensor& w : m->flat_weights) got.push_back(w.grad());
      results.push_back(got);
    }
    for (size_t i = 0; i < results[0].size(); ++i) EXPECT_TRUE(parity_close(results[0][i], results[1][i])) << i;
  }
}
