// One recurrent layer in one direction, the building block of nn::RNN / LSTM / GRU and their cells.
//   nn::RNNLayerOut r = nn::rnn_layer({.mode = nn::RNNMode::LSTM, .x = x, .h0 = h0, .c0 = c0,
//                                      .w_ih = w_ih, .w_hh = w_hh, .b_ih = b_ih, .b_hh = b_hh});
//   r.y;  r.h_n;  r.c_n;   // (T, N, H), (N, H), (N, H)
// rnn_layer is the fast path: one GEMM projects the inputs of every timestep, each step is one GEMM plus one
// fused gate kernel, and backward is a single autograd node that runs backpropagation through time itself.
// rnn_layer_reference (rnn_reference.h) computes the same from ordinary differentiable ops.
#pragma once
#include "loom/backend/kernel_args.h"
#include "loom/core/tensor.h"

namespace loom::nn {

// Gate layouts follow PyTorch: RNN one block, LSTM (i, f, g, o), GRU (r, z, n).
using RNNMode = RNNCell;  // RNN_TANH, RNN_RELU, LSTM, GRU (backend/kernel_args.h)

int64_t rnn_gate_count(RNNMode mode);  // 1, 4 or 3: weight_ih has rnn_gate_count * H rows
const char* rnn_mode_name(RNNMode mode);

struct RNNLayerArgs {
  RNNMode mode = RNNMode::LSTM;
  Tensor x{};             // (T, N, I), or (N, T, I) when batch_first
  Tensor h0{};            // (N, H); undefined means zeros
  Tensor c0{};            // (N, H), LSTM only; undefined means zeros
  Tensor w_ih{}, w_hh{};  // (G * H, I) and (G * H, H)
  Tensor b_ih{}, b_hh{};  // (G * H) each, or both undefined
  // (N) integers in [1, T], or undefined. Sequence n runs over its first lengths[n] timesteps only: outputs
  // beyond are zero and h_n / c_n are the states after its last valid step (PyTorch's packed sequences).
  Tensor lengths{};
  bool reverse = false;   // run from each sequence's last valid step back to step 0
  bool batch_first = false;
};

struct RNNLayerOut {
  Tensor y;    // x's layout with H features: (T, N, H), or (N, T, H) when batch_first
  Tensor h_n;  // (N, H)
  Tensor c_n;  // (N, H), LSTM only
};

// Checks the arguments, naming the shapes; throws loom::Error.
void check_rnn_layer_args(const RNNLayerArgs& a);

RNNLayerOut rnn_layer(const RNNLayerArgs& a);

}  // namespace loom::nn
