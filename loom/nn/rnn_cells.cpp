// Cells are one-step sequences: x (N, I) becomes (1, N, I) for rnn_layer, whose h_n / c_n are the new state.
#include "loom/nn/rnn_cells.h"

#include <cmath>

#include "loom/nn/init.h"
#include "loom/nn/repr.h"
#include "loom/ops/creation.h"
#include "loom/ops/shape.h"

namespace loom::nn {

RNNCellBase::RNNCellBase(RNNMode mode, int64_t input_size, int64_t hidden_size, bool bias)
    : mode_(mode), input_size_(input_size), hidden_size_(hidden_size), bias_(bias) {
  const char* kind = mode == RNNMode::LSTM ? "LSTMCell" : mode == RNNMode::GRU ? "GRUCell" : "RNNCell";
  LOOM_CHECK(input_size > 0 && hidden_size > 0, kind, ": input_size and hidden_size must be positive, got ",
             input_size, " and ", hidden_size);
  const int64_t GH = rnn_gate_count(mode) * hidden_size;
  weight_ih = register_parameter("weight_ih", empty({GH, input_size}));
  weight_hh = register_parameter("weight_hh", empty({GH, hidden_size}));
  bias_ih = register_parameter("bias_ih", bias ? empty({GH}) : Tensor());
  bias_hh = register_parameter("bias_hh", bias ? empty({GH}) : Tensor());
  reset_parameters();
}

void RNNCellBase::reset_parameters() {
  const double stdv = 1.0 / std::sqrt(double(hidden_size_));
  for (Tensor* w : {&weight_ih, &weight_hh, &bias_ih, &bias_hh})
    if (w->defined()) init::uniform_(*w, -stdv, stdv);
}

std::string RNNCellBase::extra_repr() const {
  std::string s = std::to_string(input_size_) + ", " + std::to_string(hidden_size_);
  if (!bias_) s += ", bias=False";
  if (mode_ == RNNMode::RNN_RELU) s += ", nonlinearity=relu";
  return s;
}

LSTMCellOutput RNNCellBase::step(const Tensor& x, const Tensor& h, const Tensor& c) {
  LOOM_CHECK(x.defined() && (x.dim() == 1 || x.dim() == 2), repr(), ": expected input to be 1-D or 2-D, got shape ",
             x.defined() ? x.shape() : Shape{});
  LOOM_CHECK(x.size(-1) == input_size_, repr(), ": input has inconsistent input_size: got ", x.size(-1),
             " expected ", input_size_, " (input shape ", x.shape(), ")");
  LOOM_CHECK(x.dtype() == weight_ih.dtype(), repr(), ": expected input of dtype ", weight_ih.dtype(),
             " (the parameters' dtype), got ", x.dtype());
  const bool batched = x.dim() == 2;
  const int64_t N = batched ? x.size(0) : 1;
  const Shape state = batched ? Shape{N, hidden_size_} : Shape{hidden_size_};
  for (const auto& [s, which] : {std::pair{&h, "hidden state h"}, std::pair{&c, "cell state c"}})
    LOOM_CHECK(!s->defined() || (s->shape() == state && s->dtype() == x.dtype()), repr(), ": expected ", which,
               " of shape ", state, " and dtype ", x.dtype(), ", got ", s->defined() ? s->shape() : Shape{}, " ",
               s->defined() ? s->dtype() : x.dtype());
  const Tensor x3 = batched ? x.unsqueeze(0) : x.reshape({1, 1, input_size_});
  const Shape s2{N, hidden_size_};
  RNNLayerOut r = rnn_layer({.mode = mode_,
                             .x = x3,
                             .h0 = h.defined() ? h.reshape(s2) : Tensor(),
                             .c0 = c.defined() ? c.reshape(s2) : Tensor(),
                             .w_ih = weight_ih,
                             .w_hh = weight_hh,
                             .b_ih = bias_ih,
                             .b_hh = bias_hh});
  if (!batched) return {r.h_n.view(state), r.c_n.defined() ? r.c_n.view(state) : Tensor()};
  return {r.h_n, r.c_n};
}

RNNCell::RNNCell(const RNNCellOptions& o)
    : RNNCellBase(o.nonlinearity == "relu" ? RNNMode::RNN_RELU : RNNMode::RNN_TANH, o.input_size, o.hidden_size,
                  o.bias),
      options(o) {
  LOOM_CHECK(o.nonlinearity == "tanh" || o.nonlinearity == "relu", "RNNCell: unknown nonlinearity '", o.nonlinearity,
             "' (expected 'tanh' or 'relu')");
}

Tensor RNNCell::forward(const Tensor& x) { return step(x, {}, {}).h; }
Tensor RNNCell::forward(const Tensor& x, const Tensor& h) { return step(x, h, {}).h; }

LSTMCell::LSTMCell(const LSTMCellOptions& o)
    : RNNCellBase(RNNMode::LSTM, o.input_size, o.hidden_size, o.bias), options(o) {}

Tensor LSTMCell::forward(const Tensor& x) { return step(x, {}, {}).h; }
LSTMCellOutput LSTMCell::forward(const Tensor& x, const Tensor& h, const Tensor& c) { return step(x, h, c); }

GRUCell::GRUCell(const GRUCellOptions& o)
    : RNNCellBase(RNNMode::GRU, o.input_size, o.hidden_size, o.bias), options(o) {}

Tensor GRUCell::forward(const Tensor& x) { return step(x, {}, {}).h; }
Tensor GRUCell::forward(const Tensor& x, const Tensor& h) { return step(x, h, {}).h; }

}  // namespace loom::nn
