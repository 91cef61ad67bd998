// Helpers shared by the tests/test_rnn_*.cpp suites: build a recurrent module from a small config, call it
// through one signature whatever its kind, and spell the same module as a torch constructor.
//   RnnCase c{.mode = nn::RNNMode::GRU, .layers = 2, .bidirectional = true};
//   auto m = make_rnn(c, 3, 4);   nn::LSTMOutput r = call(*m, x, h0, {}, lengths);   torch_ctor(c, 3, 4);
#pragma once
#include <memory>
#include <string>
#include <vector>

#include "loom/loom.h"

namespace loom::test {

struct RnnCase {
  nn::RNNMode mode = nn::RNNMode::LSTM;
  int64_t layers = 1;
  bool bidirectional = false;
  bool batch_first = false;
  bool bias = true;
  double dropout = 0.0;
};

inline std::string case_name(const RnnCase& c) {
  return std::string(nn::rnn_mode_name(c.mode)) + " layers=" + std::to_string(c.layers) +
         (c.bidirectional ? " bidirectional" : "") + (c.batch_first ? " batch_first" : "") + (c.bias ? "" : " no-bias");
}

inline std::shared_ptr<nn::RNNBase> make_rnn(const RnnCase& c, int64_t I, int64_t H) {
  const nn::LSTMOptions o{.input_size = I, .hidden_size = H, .num_layers = c.layers, .bias = c.bias,
                          .batch_first = c.batch_first, .dropout = c.dropout, .bidirectional = c.bidirectional};
  switch (c.mode) {
    case nn::RNNMode::LSTM: return std::make_shared<nn::LSTM>(o);
    case nn::RNNMode::GRU: return std::make_shared<nn::GRU>(o);
    default:
      return std::make_shared<nn::RNN>(nn::RNNOptions{
          .input_size = I, .hidden_size = H, .num_layers = c.layers,
          .nonlinearity = c.mode == nn::RNNMode::RNN_RELU ? "relu" : "tanh", .bias = c.bias,
          .batch_first = c.batch_first, .dropout = c.dropout, .bidirectional = c.bidirectional});
  }
}

// forward(x, h0[, c0], lengths) of whichever kind m is; c_n stays undefined for RNN and GRU.
inline nn::LSTMOutput call(nn::RNNBase& m, const Tensor& x, const Tensor& h0, const Tensor& c0,
                           const Tensor& lengths) {
  if (auto* l = dynamic_cast<nn::LSTM*>(&m)) return l->forward(x, h0, c0, lengths);
  nn::RNNOutput r = dynamic_cast<nn::GRU*>(&m) ? dynamic_cast<nn::GRU&>(m).forward(x, h0, lengths)
                                               : dynamic_cast<nn::RNN&>(m).forward(x, h0, lengths);
  return {r.output, r.h_n, Tensor()};
}

inline std::string py_bool(bool b) { return b ? "True" : "False"; }

inline std::string torch_ctor(const RnnCase& c, int64_t I, int64_t H) {
  std::string kind = c.mode == nn::RNNMode::LSTM ? "LSTM" : c.mode == nn::RNNMode::GRU ? "GRU" : "RNN";
  std::string s = "nn." + kind + "(" + std::to_string(I) + ", " + std::to_string(H) +
                  ", num_layers=" + std::to_string(c.layers) + ", bias=" + py_bool(c.bias) +
                  ", batch_first=" + py_bool(c.batch_first) + ", bidirectional=" + py_bool(c.bidirectional);
  if (c.mode == nn::RNNMode::RNN_RELU) s += ", nonlinearity='relu'";
  return s + ")";
}

inline Tensor lengths_of(const std::vector<int64_t>& v) { return tensor(v, {int64_t(v.size())}); }

// Input (T, N, I) or (N, T, I) of the given dtype with values in [-1, 1).
inline Tensor seq_input(const RnnCase& c, int64_t T, int64_t N, int64_t I, DType dt) {
  const Shape s = c.batch_first ? Shape{N, T, I} : Shape{T, N, I};
  return (rand(s, {.dtype = dt}) * 2.0 - 1.0).detach();
}

}  // namespace loom::test
