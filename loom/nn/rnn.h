// Recurrent layers with PyTorch 1.13's semantics, parameter names and layouts: torch.nn.RNN / LSTM / GRU.
//   nn::LSTM lstm({.input_size = 64, .hidden_size = 256, .num_layers = 2, .batch_first = true});
//   auto [y, h_n, c_n] = lstm.forward(x, h0, c0);      // states (num_layers * directions, N, H); {} means zeros
//   Tensor out = lstm(x);  auto packed = lstm.forward(x, {}, {}, lengths);  // variable-length batch
// Parameters are weight_ih_l{k}, weight_hh_l{k}, bias_ih_l{k}, bias_hh_l{k} (plus _reverse for the backward
// direction) with gates stacked in PyTorch's order (LSTM i, f, g, o; GRU r, z, n), so state dicts load either
// way. `lengths` (int64, one per batch entry) gives pack_padded_sequence(enforce_sorted=False) semantics:
// outputs past a sequence's length are zero (pad_packed_sequence with total_length = T), h_n / c_n are the states
// at each sequence's last valid step, and the reverse direction starts at that step.
#pragma once
#include <string>
#include <vector>

#include "loom/nn/module.h"
#include "loom/nn/rnn_cells.h"  // RNNCell, LSTMCell, GRUCell
#include "loom/nn/rnn_layer.h"

namespace loom::nn {

struct RNNOptions {
  int64_t input_size = 0;
  int64_t hidden_size = 0;
  int64_t num_layers = 1;
  std::string nonlinearity = "tanh";  // or "relu"
  bool bias = true;
  bool batch_first = false;  // input and output as (N, T, features); the states keep (layers * dirs, N, H)
  double dropout = 0.0;      // on the output of every layer but the last, in training mode only
  bool bidirectional = false;
};

struct LSTMOptions {
  int64_t input_size = 0;
  int64_t hidden_size = 0;
  int64_t num_layers = 1;
  bool bias = true;
  bool batch_first = false;
  double dropout = 0.0;
  bool bidirectional = false;
};
using GRUOptions = LSTMOptions;

struct RNNOutput {
  Tensor output;  // (T, N, D * H), or (N, T, D * H) when batch_first; (T, D * H) for an unbatched input
  Tensor h_n;     // (num_layers * D, N, H): layer-major, forward direction first
};

struct LSTMOutput {
  Tensor output;
  Tensor h_n;
  Tensor c_n;
};

// What RNN, LSTM and GRU share: parameters, input checks, and the stacking of layers and directions.
class RNNBase : public Module {
 public:
  std::string extra_repr() const override;
  void reset_parameters();  // every parameter ~ U(-1/sqrt(H), 1/sqrt(H)), as PyTorch
  int64_t num_directions() const { return cfg_.bidirectional ? 2 : 1; }

  // One layer and direction's parameters (direction 1 is the *_reverse set). Biases are undefined without bias.
  Tensor weight_ih(int64_t layer, int64_t direction = 0) const { return flat_weights[slot(layer, direction, 0)]; }
  Tensor weight_hh(int64_t layer, int64_t direction = 0) const { return flat_weights[slot(layer, direction, 1)]; }
  Tensor bias_ih(int64_t layer, int64_t direction = 0) const;
  Tensor bias_hh(int64_t layer, int64_t direction = 0) const;

  // The registered parameters in PyTorch's order (its _flat_weights): per layer, per direction, weight_ih,
  // weight_hh, then bias_ih, bias_hh. forward() reads these handles, so tests may assign other tensors.
  std::vector<Tensor> flat_weights;
  // Run the op-by-op reference recurrence (rnn_reference.h) instead of the fused layers: slow, for tests.
  bool use_reference = false;

 protected:
  struct Config {
    RNNMode mode = RNNMode::LSTM;
    int64_t input_size = 0, hidden_size = 0, num_layers = 1;
    bool bias = true, batch_first = false;
    double dropout = 0.0;
    bool bidirectional = false;
  };
  explicit RNNBase(const Config& c);
  // h0 / c0: (layers * D, N, H), or (layers * D, H) for an unbatched (T, I) input; undefined means zeros.
  LSTMOutput run(const Tensor& x, const Tensor& h0, const Tensor& c0, const Tensor& lengths);

  Config cfg_;

 private:
  size_t slot(int64_t layer, int64_t direction, int64_t k) const;  // index into flat_weights, checked
  void check_state(const Tensor& s, const Shape& expected, const char* which) const;
};

// Elman RNN: h' = tanh(x W_ih^T + b_ih + h W_hh^T + b_hh) (or relu).
class RNN : public RNNBase {
 public:
  explicit RNN(const RNNOptions& o);
  Tensor forward(const Tensor& x) override;
  RNNOutput forward(const Tensor& x, const Tensor& h0, const Tensor& lengths = {});

  RNNOptions options;
};

class LSTM : public RNNBase {
 public:
  explicit LSTM(const LSTMOptions& o);
  Tensor forward(const Tensor& x) override;
  LSTMOutput forward(const Tensor& x, const Tensor& h0, const Tensor& c0 = {}, const Tensor& lengths = {});

  LSTMOptions options;
};

// n = tanh(x W_in^T + b_in + r * (h W_hn^T + b_hn)), h' = (1 - z) * n + z * h.
class GRU : public RNNBase {
 public:
  explicit GRU(const GRUOptions& o);
  Tensor forward(const Tensor& x) override;
  RNNOutput forward(const Tensor& x, const Tensor& h0, const Tensor& lengths = {});

  GRUOptions options;
};

}  // namespace loom::nn
