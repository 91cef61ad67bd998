// Argument checks and names shared by the fused layer (rnn_layer.cpp) and the reference (rnn_reference.cpp).
#include "loom/nn/rnn_layer.h"

namespace loom::nn {

int64_t rnn_gate_count(RNNMode mode) {
  switch (mode) {
    case RNNMode::LSTM: return 4;
    case RNNMode::GRU: return 3;
    default: return 1;
  }
}

const char* rnn_mode_name(RNNMode mode) {
  switch (mode) {
    case RNNMode::LSTM: return "LSTM";
    case RNNMode::GRU: return "GRU";
    case RNNMode::RNN_TANH: return "RNN_TANH";
    default: return "RNN_RELU";
  }
}

void check_rnn_layer_args(const RNNLayerArgs& a) {
  const char* op = rnn_mode_name(a.mode);
  LOOM_CHECK(a.x.defined() && a.x.dim() == 3, op, " layer: expected a 3-d input ",
             a.batch_first ? "(N, T, I)" : "(T, N, I)", ", got shape ", a.x.defined() ? a.x.shape() : Shape{});
  LOOM_CHECK(is_floating(a.x.dtype()) && a.x.dtype() != DType::bf16 && a.x.dtype() != DType::f16, op,
             " layer: expected a float32 or float64 input, got ", a.x.dtype());
  LOOM_CHECK(a.w_ih.defined() && a.w_hh.defined() && a.w_ih.dim() == 2 && a.w_hh.dim() == 2, op,
             " layer: weight_ih and weight_hh must be 2-d");
  const int64_t T = a.x.size(a.batch_first ? 1 : 0), N = a.x.size(a.batch_first ? 0 : 1), I = a.x.size(2);
  const int64_t H = a.w_hh.size(1), GH = rnn_gate_count(a.mode) * H;
  LOOM_CHECK(T > 0 && N > 0 && H > 0, op, " layer: expected a non-empty input and hidden size, got input ",
             a.x.shape(), " and weight_hh ", a.w_hh.shape());
  LOOM_CHECK(a.w_hh.shape() == Shape({GH, H}), op, " layer: weight_hh must be (", GH, ", ", H, "), got ",
             a.w_hh.shape());
  LOOM_CHECK(a.w_ih.shape() == Shape({GH, I}), op, " layer: weight_ih must be (", GH, ", ", I,
             ") for input shape ", a.x.shape(), ", got ", a.w_ih.shape());
  for (const Tensor* t : {&a.w_ih, &a.w_hh, &a.b_ih, &a.b_hh, &a.h0, &a.c0})
    LOOM_CHECK(!t->defined() || t->dtype() == a.x.dtype(), op, " layer: every tensor must have the input's dtype ",
               a.x.dtype(), ", got ", t->dtype());
  LOOM_CHECK(a.b_ih.defined() == a.b_hh.defined(), op, " layer: bias_ih and bias_hh come together");
  if (a.b_ih.defined())
    LOOM_CHECK(a.b_ih.shape() == Shape({GH}) && a.b_hh.shape() == Shape({GH}), op, " layer: biases must be (", GH,
               "), got ", a.b_ih.shape(), " and ", a.b_hh.shape());
  LOOM_CHECK(!a.h0.defined() || a.h0.shape() == Shape({N, H}), op, " layer: h0 must be (", N, ", ", H, "), got ",
             a.h0.defined() ? a.h0.shape() : Shape{});
  LOOM_CHECK(!a.c0.defined() || a.mode == RNNMode::LSTM, op, " layer: only LSTM has a cell state c0");
  LOOM_CHECK(!a.c0.defined() || a.c0.shape() == Shape({N, H}), op, " layer: c0 must be (", N, ", ", H, "), got ",
             a.c0.defined() ? a.c0.shape() : Shape{});
  if (a.lengths.defined()) {
    LOOM_CHECK(!is_floating(a.lengths.dtype()) && a.lengths.dtype() != DType::boolean && a.lengths.dim() == 1 &&
                   a.lengths.size(0) == N,
               op, " layer: lengths must be a 1-d integer tensor of ", N, " (batch size) entries, got ",
               a.lengths.dtype(), " of shape ", a.lengths.shape());
    for (double v : a.lengths.tolist())
      LOOM_CHECK(v >= 1 && v <= double(T), op, " layer: every length must be in [1, ", T,
                 "] (the sequence length), got ", int64_t(v));
  }
}

}  // namespace loom::nn
