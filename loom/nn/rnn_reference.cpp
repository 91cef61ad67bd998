// The reference recurrence: PyTorch's equations step by step in ordinary ops, so autograd builds the backward.
// Rows past their sequence's length keep their state (where(valid, new, old)) and output zero.
#include "loom/nn/rnn_reference.h"

#include <vector>

#include "loom/ops/creation.h"
#include "loom/ops/elementwise.h"
#include "loom/ops/linalg.h"
#include "loom/ops/shape.h"

namespace loom::nn {

RNNLayerOut rnn_layer_reference(const RNNLayerArgs& a) {
  check_rnn_layer_args(a);
  const Tensor x = a.batch_first ? a.x.transpose(0, 1) : a.x;  // (T, N, I)
  const int64_t T = x.size(0), N = x.size(1), H = a.w_hh.size(1);
  const Options opt{.dtype = x.dtype()};
  Tensor h = a.h0.defined() ? a.h0 : zeros({N, H}, opt);
  Tensor c = a.mode != RNNMode::LSTM ? Tensor() : a.c0.defined() ? a.c0 : zeros({N, H}, opt);
  const bool bias = a.b_ih.defined();
  Tensor xw = matmul(x, a.w_ih.t());  // (T, N, G * H)
  if (bias) xw = xw + a.b_ih;
  Tensor lengths = a.lengths.defined() ? a.lengths.to(DType::i64).reshape({N, 1}) : Tensor();
  std::vector<Tensor> ys{size_t(T)};
  for (int64_t k = 0; k < T; ++k) {
    const int64_t t = a.reverse ? T - 1 - k : k;
    Tensor xt = xw.select(0, t);
    Tensor hw = matmul(h, a.w_hh.t());
    if (bias) hw = hw + a.b_hh;
    Tensor h2, c2;
    switch (a.mode) {
      case RNNMode::RNN_TANH: h2 = tanh(xt + hw); break;
      case RNNMode::RNN_RELU: h2 = relu(xt + hw); break;
      case RNNMode::LSTM: {
        std::vector<Tensor> gates = chunk(xt + hw, 4, 1);
        Tensor i = sigmoid(gates[0]), f = sigmoid(gates[1]), g = tanh(gates[2]), o = sigmoid(gates[3]);
        c2 = f * c + i * g;
        h2 = o * tanh(c2);
        break;
      }
      case RNNMode::GRU: {
        std::vector<Tensor> xg = chunk(xt, 3, 1), hg = chunk(hw, 3, 1);
        Tensor r = sigmoid(xg[0] + hg[0]), z = sigmoid(xg[1] + hg[1]);
        Tensor n = tanh(xg[2] + r * hg[2]);
        h2 = (1.0 - z) * n + z * h;
        break;
      }
    }
    if (lengths.defined()) {
      Tensor valid = lengths > double(t);  // (N, 1) bool
      h2 = where(valid, h2, h);
      if (c2.defined()) c2 = where(valid, c2, c);
      ys[size_t(t)] = where(valid, h2, 0.0);
    } else {
      ys[size_t(t)] = h2;
    }
    h = h2;
    c = c2;
  }
  Tensor y = stack(ys, 0);
  return {a.batch_first ? y.transpose(0, 1) : y, h, c};
}

}  // namespace loom::nn
