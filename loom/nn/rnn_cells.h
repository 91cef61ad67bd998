// Single-step recurrent cells, like torch.nn.RNNCell / LSTMCell / GRUCell (same parameter names and layouts:
// weight_ih (G * H, I), weight_hh (G * H, H), bias_ih, bias_hh).
//   nn::LSTMCell cell({.input_size = 10, .hidden_size = 20});
//   auto [h, c] = cell.forward(x, h, c);     // x (N, I) or (I); states (N, H) or (H); {} means zeros
//   Tensor h1 = gru_cell.forward(x, h0);     // cell(x) starts from zeros
// A step runs the same fused kernel and single backward node as the sequence layers (rnn_layer.h, T = 1).
#pragma once
#include <string>

#include "loom/nn/module.h"
#include "loom/nn/rnn_layer.h"

namespace loom::nn {

struct RNNCellOptions {
  int64_t input_size = 0;
  int64_t hidden_size = 0;
  bool bias = true;
  std::string nonlinearity = "tanh";  // or "relu"
};

struct LSTMCellOptions {
  int64_t input_size = 0;
  int64_t hidden_size = 0;
  bool bias = true;
};
using GRUCellOptions = LSTMCellOptions;

struct LSTMCellOutput {
  Tensor h;
  Tensor c;
};

class RNNCellBase : public Module {
 public:
  std::string extra_repr() const override;
  void reset_parameters();  // U(-1/sqrt(H), 1/sqrt(H)) for every parameter, as PyTorch

  Tensor weight_ih, weight_hh;  // (G * H, I), (G * H, H)
  Tensor bias_ih, bias_hh;      // (G * H), undefined without bias

 protected:
  RNNCellBase(RNNMode mode, int64_t input_size, int64_t hidden_size, bool bias);
  // One step; c only for LSTM. Shapes are checked against this cell, naming it.
  LSTMCellOutput step(const Tensor& x, const Tensor& h, const Tensor& c);

  RNNMode mode_;
  int64_t input_size_, hidden_size_;
  bool bias_;
};

class RNNCell : public RNNCellBase {
 public:
  explicit RNNCell(const RNNCellOptions& o);
  Tensor forward(const Tensor& x) override;
  Tensor forward(const Tensor& x, const Tensor& h);

  RNNCellOptions options;
};

class LSTMCell : public RNNCellBase {
 public:
  explicit LSTMCell(const LSTMCellOptions& o);
  Tensor forward(const Tensor& x) override;  // h' from zero states
  LSTMCellOutput forward(const Tensor& x, const Tensor& h, const Tensor& c);

  LSTMCellOptions options;
};

class GRUCell : public RNNCellBase {
 public:
  explicit GRUCell(const GRUCellOptions& o);
  Tensor forward(const Tensor& x) override;
  Tensor forward(const Tensor& x, const Tensor& h);

  GRUCellOptions options;
};

}  // namespace loom::nn
