// Recurrent layers: float64 finite-difference gradchecks of the fused layers' single backward node, through the
// input, the initial states and every parameter, with every output (output, h_n, c_n) in the checked sum.
#include <gtest/gtest.h>

#include <vector>

#include "loom/loom.h"
#include "support/gradcheck.h"
#include "test_rnn_helpers.h"

using namespace loom;
using loom::test::RnnCase;
using loom::test::rand64;

namespace {

Tensor flat_outputs(const nn::LSTMOutput& r) {
  std::vector<Tensor> parts{r.output.reshape({-1}), r.h_n.reshape({-1})};
  if (r.c_n.defined()) parts.push_back(r.c_n.reshape({-1}));
  return cat(parts, 0);
}

// in = {x, h0, c0, every flat weight}; h0 / c0 undefined when not given.
void expect_rnn_gradcheck(const RnnCase& c, int64_t T, int64_t N, int64_t I, int64_t H, bool states,
                          const std::vector<int64_t>& lengths = {}) {
  SCOPED_TRACE(test::case_name(c) + (states ? " with h0" : "") + (lengths.empty() ? "" : " with lengths"));
  auto m = test::make_rnn(c, I, H);
  m->to(DType::f64);
  const int64_t S = c.layers * (c.bidirectional ? 2 : 1);
  const bool lstm = c.mode == nn::RNNMode::LSTM;
  Tensor x = test::seq_input(c, T, N, I, DType::f64).requires_grad_(true);
  std::vector<Tensor> in{x, states ? rand64({S, N, H}) : Tensor(), states && lstm ? rand64({S, N, H}) : Tensor()};
  for (const Tensor& w : m->flat_weights) in.push_back(w.detach().clone().requires_grad_(true));
  const Tensor len = lengths.empty() ? Tensor() : test::lengths_of(lengths);
  EXPECT_GRADCHECK(
      [&](const std::vector<Tensor>& v) {
        for (size_t i = 0; i < m->flat_weights.size(); ++i) m->flat_weights[i] = v[3 + i];
        return flat_outputs(test::call(*m, v[0], v[1], v[2], len));
      },
      in);
}

const std::vector<nn::RNNMode> kModes{nn::RNNMode::RNN_TANH, nn::RNNMode::RNN_RELU, nn::RNNMode::LSTM,
                                      nn::RNNMode::GRU};

}  // namespace

// The layer function itself, each direction and layout, with and without lengths and biases.
TEST(RnnGradcheck, LayerEveryModeDirectionAndLayout) {
  manual_seed(1);
  for (nn::RNNMode mode : kModes)
    for (int variant = 0; variant < 8; ++variant) {
      const bool reverse = variant & 1, bf = variant & 2, packed = variant & 4;
      SCOPED_TRACE(std::string(nn::rnn_mode_name(mode)) + (reverse ? " reverse" : "") + (bf ? " batch_first" : "") +
                   (packed ? " lengths" : ""));
      const int64_t T = 4, N = 3, I = 3, H = 2, GH = nn::rnn_gate_count(mode) * H;
      const bool lstm = mode == nn::RNNMode::LSTM, bias = variant != 6;
      std::vector<Tensor> in{rand64(bf ? Shape{N, T, I} : Shape{T, N, I}), rand64({N, H}),
                             lstm ? rand64({N, H}) : Tensor(),   rand64({GH, I}, -0.8, 0.8),
                             rand64({GH, H}, -0.8, 0.8),          bias ? rand64({GH}) : Tensor(),
                             bias ? rand64({GH}) : Tensor()};
      const Tensor len = packed ? test::lengths_of({2, 4, 1}) : Tensor();
      EXPECT_GRADCHECK(
          [&](const std::vector<Tensor>& v) {
            nn::RNNLayerOut r = nn::rnn_layer({.mode = mode, .x = v[0], .h0 = v[1], .c0 = v[2], .w_ih = v[3],
                                               .w_hh = v[4], .b_ih = v[5], .b_hh = v[6], .lengths = len,
                                               .reverse = reverse, .batch_first = bf});
            return flat_outputs({r.y, r.h_n, r.c_n});
          },
          in);
    }
}

TEST(RnnGradcheck, LSTMTwoLayersBidirectional) {
  manual_seed(2);
  expect_rnn_gradcheck({.mode = nn::RNNMode::LSTM, .layers = 2, .bidirectional = true}, 4, 3, 3, 3, true);
  expect_rnn_gradcheck({.mode = nn::RNNMode::LSTM, .layers = 2}, 3, 2, 2, 3, false);
}

TEST(RnnGradcheck, LSTMBatchFirstWithStatesAndLengths) {
  manual_seed(3);
  expect_rnn_gradcheck({.mode = nn::RNNMode::LSTM, .batch_first = true}, 4, 3, 3, 2, true);
  expect_rnn_gradcheck({.mode = nn::RNNMode::LSTM, .layers = 2, .bidirectional = true, .batch_first = true}, 5, 3, 2,
                       2, true, {3, 5, 1});
  expect_rnn_gradcheck({.mode = nn::RNNMode::LSTM, .bias = false}, 3, 2, 3, 2, true, {3, 2});
}

TEST(RnnGradcheck, GRUConfigurations) {
  manual_seed(4);
  expect_rnn_gradcheck({.mode = nn::RNNMode::GRU, .layers = 2, .bidirectional = true}, 4, 3, 3, 3, true);
  expect_rnn_gradcheck({.mode = nn::RNNMode::GRU, .batch_first = true}, 4, 2, 3, 3, true);
  expect_rnn_gradcheck({.mode = nn::RNNMode::GRU, .layers = 2, .bidirectional = true, .batch_first = true}, 5, 3, 2, 2,
                       true, {5, 2, 4});
  expect_rnn_gradcheck({.mode = nn::RNNMode::GRU, .bias = false}, 3, 2, 2, 3, false, {1, 3});
}

TEST(RnnGradcheck, RNNTanhAndReluConfigurations) {
  manual_seed(5);
  for (nn::RNNMode mode : {nn::RNNMode::RNN_TANH, nn::RNNMode::RNN_RELU}) {
    expect_rnn_gradcheck({.mode = mode, .layers = 2, .bidirectional = true}, 4, 3, 3, 3, true);
    expect_rnn_gradcheck({.mode = mode, .batch_first = true}, 4, 2, 3, 3, true);
    expect_rnn_gradcheck({.mode = mode, .layers = 2, .bidirectional = true, .batch_first = true}, 5, 3, 2, 2, true,
                         {4, 5, 2});
  }
}

TEST(RnnGradcheck, UnbatchedInput) {
  manual_seed(6);
  nn::LSTM lstm({.input_size = 3, .hidden_size = 2, .num_layers = 2, .bidirectional = true});
  lstm.to(DType::f64);
  std::vector<Tensor> in{rand64({4, 3}), rand64({4, 2}), rand64({4, 2})};
  for (const Tensor& w : lstm.flat_weights) in.push_back(w.detach().clone().requires_grad_(true));
  EXPECT_GRADCHECK(
      [&](const std::vector<Tensor>& v) {
        for (size_t i = 0; i < lstm.flat_weights.size(); ++i) lstm.flat_weights[i] = v[3 + i];
        return flat_outputs(lstm.forward(v[0], v[1], v[2]));
      },
      in);
}

TEST(RnnGradcheck, Cells) {
  manual_seed(7);
  auto check_cell = [](nn::RNNCellBase& cell, bool lstm, const Shape& xs, const Shape& hs) {
    cell.to(DType::f64);
    std::vector<Tensor> in{rand64(xs), rand64(hs), lstm ? rand64(hs) : Tensor(),
                           cell.weight_ih.detach().clone().requires_grad_(true),
                           cell.weight_hh.detach().clone().requires_grad_(true),
                           cell.bias_ih.defined() ? cell.bias_ih.detach().clone().requires_grad_(true) : Tensor(),
                           cell.bias_hh.defined() ? cell.bias_hh.detach().clone().requires_grad_(true) : Tensor()};
    EXPECT_GRADCHECK(
        [&](const std::vector<Tensor>& v) {
          cell.weight_ih = v[3];
          cell.weight_hh = v[4];
          cell.bias_ih = v[5];
          cell.bias_hh = v[6];
          if (auto* l = dynamic_cast<nn::LSTMCell*>(&cell)) {
            auto [h, c] = l->forward(v[0], v[1], v[2]);
            return cat({h.reshape({-1}), c.reshape({-1})}, 0);
          }
          if (auto* g = dynamic_cast<nn::GRUCell*>(&cell)) return g->forward(v[0], v[1]);
          return dynamic_cast<nn::RNNCell&>(cell).forward(v[0], v[1]);
        },
        in);
  };
  nn::RNNCell tanh_cell({.input_size = 3, .hidden_size = 4});
  check_cell(tanh_cell, false, {2, 3}, {2, 4});
  nn::RNNCell relu_cell({.input_size = 3, .hidden_size = 4, .nonlinearity = "relu"});
  check_cell(relu_cell, false, {3}, {4});  // unbatched
  nn::LSTMCell lstm_cell({.input_size = 3, .hidden_size = 4});
  check_cell(lstm_cell, true, {2, 3}, {2, 4});
  nn::LSTMCell lstm_nb({.input_size = 2, .hidden_size = 3, .bias = false});
  check_cell(lstm_nb, true, {2}, {3});
  nn::GRUCell gru_cell({.input_size = 3, .hidden_size = 4});
  check_cell(gru_cell, false, {2, 3}, {2, 4});
}
