// RNN / LSTM / GRU modules: PyTorch's parameter registration and checks around rnn_layer, one call per layer
// and direction. Layer l > 0 reads the previous layer's output (both directions concatenated), after dropout in
// training mode.
#include "loom/nn/rnn.h"

#include <cmath>

#include "loom/nn/init.h"
#include "loom/nn/repr.h"
#include "loom/nn/rnn_reference.h"
#include "loom/ops/creation.h"
#include "loom/ops/nn_functional.h"
#include "loom/ops/shape.h"

namespace loom::nn {

namespace {

const char* kind_name(RNNMode mode) {
  return mode == RNNMode::LSTM ? "LSTM" : mode == RNNMode::GRU ? "GRU" : "RNN";
}

RNNMode rnn_mode(const std::string& nonlinearity) {
  LOOM_CHECK(nonlinearity == "tanh" || nonlinearity == "relu", "RNN: unknown nonlinearity '", nonlinearity,
             "' (expected 'tanh' or 'relu')");
  return nonlinearity == "tanh" ? RNNMode::RNN_TANH : RNNMode::RNN_RELU;
}

}  // namespace

RNNBase::RNNBase(const Config& c) : cfg_(c) {
  const char* kind = kind_name(c.mode);
  LOOM_CHECK(c.input_size > 0 && c.hidden_size > 0, kind, ": input_size and hidden_size must be positive, got ",
             c.input_size, " and ", c.hidden_size);
  LOOM_CHECK(c.num_layers > 0, kind, ": num_layers must be greater than zero, got ", c.num_layers);
  LOOM_CHECK(c.dropout >= 0.0 && c.dropout <= 1.0, kind,
             ": dropout should be a number in range [0, 1] representing the probability of an element being zeroed, "
             "got ", c.dropout);
  const int64_t H = c.hidden_size, GH = rnn_gate_count(c.mode) * H, D = num_directions();
  for (int64_t l = 0; l < c.num_layers; ++l) {
    const int64_t in = l == 0 ? c.input_size : H * D;
    for (int64_t d = 0; d < D; ++d) {
      const std::string sfx = "_l" + std::to_string(l) + (d == 1 ? "_reverse" : "");
      flat_weights.push_back(register_parameter("weight_ih" + sfx, empty({GH, in})));
      flat_weights.push_back(register_parameter("weight_hh" + sfx, empty({GH, H})));
      if (c.bias) {
        flat_weights.push_back(register_parameter("bias_ih" + sfx, empty({GH})));
        flat_weights.push_back(register_parameter("bias_hh" + sfx, empty({GH})));
      }
    }
  }
  reset_parameters();
}

void RNNBase::reset_parameters() {
  const double stdv = 1.0 / std::sqrt(double(cfg_.hidden_size));
  for (Tensor& w : flat_weights) init::uniform_(w, -stdv, stdv);
}

size_t RNNBase::slot(int64_t layer, int64_t direction, int64_t k) const {
  LOOM_CHECK(layer >= 0 && layer < cfg_.num_layers && direction >= 0 && direction < num_directions(), repr(),
             ": no parameters for layer ", layer, ", direction ", direction);
  const int64_t per = cfg_.bias ? 4 : 2;
  return size_t((layer * num_directions() + direction) * per + k);
}

Tensor RNNBase::bias_ih(int64_t layer, int64_t direction) const {
  const size_t i = slot(layer, direction, 2);
  return cfg_.bias ? flat_weights[i] : Tensor();
}

Tensor RNNBase::bias_hh(int64_t layer, int64_t direction) const {
  const size_t i = slot(layer, direction, 3);
  return cfg_.bias ? flat_weights[i] : Tensor();
}

std::string RNNBase::extra_repr() const {
  std::string s = std::to_string(cfg_.input_size) + ", " + std::to_string(cfg_.hidden_size);
  if (cfg_.num_layers != 1) s += ", num_layers=" + std::to_string(cfg_.num_layers);
  if (!cfg_.bias) s += ", bias=False";
  if (cfg_.batch_first) s += ", batch_first=True";
  if (cfg_.dropout != 0.0) s += ", dropout=" + py_float(cfg_.dropout);
  if (cfg_.bidirectional) s += ", bidirectional=True";
  return s;
}

void RNNBase::check_state(const Tensor& s, const Shape& expected, const char* which) const {
  LOOM_CHECK(!s.defined() || s.shape() == expected, repr(), ": expected ", which, " of shape ", expected, ", got ",
             s.defined() ? s.shape() : Shape{});
  LOOM_CHECK(!s.defined() || s.dtype() == flat_weights[0].dtype(), repr(), ": expected ", which, " of dtype ",
             flat_weights[0].dtype(), " (the parameters' dtype), got ", s.defined() ? s.dtype() : DType::f32);
}

LSTMOutput RNNBase::run(const Tensor& x, const Tensor& h0, const Tensor& c0, const Tensor& lengths) {
  LOOM_CHECK(x.defined() && (x.dim() == 2 || x.dim() == 3), repr(), ": expected a 2-D (unbatched) or 3-D (batched) ",
             "input, got shape ", x.defined() ? x.shape() : Shape{});
  LOOM_CHECK(x.size(-1) == cfg_.input_size, repr(), ": input.size(-1) must be equal to input_size. Expected ",
             cfg_.input_size, ", got ", x.size(-1), " (input shape ", x.shape(), ")");
  LOOM_CHECK(x.dtype() == flat_weights[0].dtype(), repr(), ": expected input of dtype ", flat_weights[0].dtype(),
             " (the parameters' dtype), got ", x.dtype());
  const bool batched = x.dim() == 3, bf = cfg_.batch_first;
  const Tensor xin = batched ? x : x.unsqueeze(bf ? 0 : 1);
  const int64_t T = xin.size(bf ? 1 : 0), N = xin.size(bf ? 0 : 1), H = cfg_.hidden_size;
  const int64_t L = cfg_.num_layers, D = num_directions();
  const bool lstm = cfg_.mode == RNNMode::LSTM;
  const Shape state = batched ? Shape{L * D, N, H} : Shape{L * D, H};
  check_state(h0, state, lstm ? "h0 (hx[0])" : "h0 (hx)");
  if (lstm) check_state(c0, state, "c0 (hx[1])");
  if (lengths.defined()) {
    LOOM_CHECK(batched, repr(), ": lengths need a batched (3-D) input, got shape ", x.shape());
    LOOM_CHECK(!is_floating(lengths.dtype()) && lengths.dtype() != DType::boolean && lengths.dim() == 1 &&
                   lengths.size(0) == N,
               repr(), ": lengths must be a 1-d integer tensor with one entry per batch element (", N, "), got ",
               lengths.dtype(), " of shape ", lengths.shape());
    for (double v : lengths.tolist())
      LOOM_CHECK(v >= 1 && v <= double(T), repr(), ": every length must be in [1, ", T,
                 "] (the input's sequence length), got ", int64_t(v));
  }
  const Tensor h0b = h0.defined() && !batched ? h0.unsqueeze(1) : h0;
  const Tensor c0b = c0.defined() && !batched ? c0.unsqueeze(1) : c0;
  auto layer_fn = use_reference ? rnn_layer_reference : rnn_layer;
  Tensor input = xin;
  std::vector<Tensor> hs, cs;
  for (int64_t l = 0; l < L; ++l) {
    std::vector<Tensor> ys;
    for (int64_t d = 0; d < D; ++d) {
      const int64_t i = l * D + d;
      RNNLayerOut r = layer_fn({.mode = cfg_.mode,
                                .x = input,
                                .h0 = h0b.defined() ? h0b.select(0, i) : Tensor(),
                                .c0 = c0b.defined() ? c0b.select(0, i) : Tensor(),
                                .w_ih = weight_ih(l, d),
                                .w_hh = weight_hh(l, d),
                                .b_ih = bias_ih(l, d),
                                .b_hh = bias_hh(l, d),
                                .lengths = lengths,
                                .reverse = d == 1,
                                .batch_first = bf});
      ys.push_back(r.y);
      hs.push_back(r.h_n);
      if (lstm) cs.push_back(r.c_n);
    }
    input = D == 1 ? ys[0] : cat(ys, 2);
    if (l + 1 < L && cfg_.dropout > 0.0 && is_training()) input = dropout(input, cfg_.dropout, true);
  }
  LSTMOutput out{input, stack(hs, 0), lstm ? stack(cs, 0) : Tensor()};
  if (!batched) {
    out.output = out.output.squeeze(bf ? 0 : 1);
    out.h_n = out.h_n.squeeze(1);
    if (lstm) out.c_n = out.c_n.squeeze(1);
  }
  return out;
}

// ---- RNN

RNN::RNN(const RNNOptions& o)
    : RNNBase({.mode = rnn_mode(o.nonlinearity), .input_size = o.input_size, .hidden_size = o.hidden_size,
               .num_layers = o.num_layers, .bias = o.bias, .batch_first = o.batch_first, .dropout = o.dropout,
               .bidirectional = o.bidirectional}),
      options(o) {}

Tensor RNN::forward(const Tensor& x) { return run(x, {}, {}, {}).output; }

RNNOutput RNN::forward(const Tensor& x, const Tensor& h0, const Tensor& lengths) {
  LSTMOutput r = run(x, h0, {}, lengths);
  return {r.output, r.h_n};
}

// ---- LSTM

LSTM::LSTM(const LSTMOptions& o)
    : RNNBase({.mode = RNNMode::LSTM, .input_size = o.input_size, .hidden_size = o.hidden_size,
               .num_layers = o.num_layers, .bias = o.bias, .batch_first = o.batch_first, .dropout = o.dropout,
               .bidirectional = o.bidirectional}),
      options(o) {}

Tensor LSTM::forward(const Tensor& x) { return run(x, {}, {}, {}).output; }

LSTMOutput LSTM::forward(const Tensor& x, const Tensor& h0, const Tensor& c0, const Tensor& lengths) {
  return run(x, h0, c0, lengths);
}

// ---- GRU

GRU::GRU(const GRUOptions& o)
    : RNNBase({.mode = RNNMode::GRU, .input_size = o.input_size, .hidden_size = o.hidden_size,
               .num_layers = o.num_layers, .bias = o.bias, .batch_first = o.batch_first, .dropout = o.dropout,
               .bidirectional = o.bidirectional}),
      options(o) {}

Tensor GRU::forward(const Tensor& x) { return run(x, {}, {}, {}).output; }

RNNOutput GRU::forward(const Tensor& x, const Tensor& h0, const Tensor& lengths) {
  LSTMOutput r = run(x, h0, {}, lengths);
  return {r.output, r.h_n};
}

}  // namespace loom::nn
