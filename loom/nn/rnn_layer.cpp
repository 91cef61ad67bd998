// The fused recurrent layer: argument checks and one autograd node here; the compute (an input projection GEMM
// over all timesteps, then per step one small GEMM plus one fused gate kernel, and the reverse loop for backward)
// is behind Backend::rnn_input_projection / rnn_forward / rnn_backward (loom/backend/cpu/rnn.cpp).
#include "loom/nn/rnn_layer.h"

#include <memory>
#include <vector>

#include "loom/autograd/function.h"
#include "loom/backend/backend.h"
#include "loom/core/dispatch.h"
#include "loom/ops/creation.h"
#include "loom/ops/elementwise.h"

namespace loom::nn {

using autograd::SavedTensor;
using G = std::vector<Tensor>;

namespace {

// What backward needs; buffers other than x and the weights are internal, so they need no version checks.
struct Saved {
  RNNGeom geo;
  RNNBuffers buf;
  SavedTensor x, w_ih, w_hh;
  RNNGradFlags want;
};

}  // namespace

RNNLayerOut rnn_layer(const RNNLayerArgs& a) {
  check_rnn_layer_args(a);
  // Differentiable conversions first, so gradients reach the caller's tensors through them.
  const Tensor x = a.x.contiguous(), h0 = a.h0.defined() ? a.h0.contiguous() : Tensor();
  const Tensor c0 = a.c0.defined() ? a.c0.contiguous() : Tensor();
  const Tensor w_ih = a.w_ih.contiguous(), w_hh = a.w_hh.contiguous();
  const Tensor b_ih = a.b_ih.defined() ? a.b_ih.contiguous() : Tensor();
  const Tensor b_hh = a.b_hh.defined() ? a.b_hh.contiguous() : Tensor();
  const bool record = autograd::needs_grad({x, h0, c0, w_ih, w_hh, b_ih, b_hh});

  auto s = std::make_shared<Saved>();
  RNNGeom& g = s->geo;
  g.cell = a.mode;
  g.reverse = a.reverse;
  g.T = x.size(a.batch_first ? 1 : 0);
  g.N = x.size(a.batch_first ? 0 : 1);
  g.I = x.size(2);
  g.H = w_hh.size(1);
  g.G = rnn_gate_count(a.mode);
  g.ts = a.batch_first ? 1 : g.N;
  g.bs = a.batch_first ? g.T : 1;
  const DType dt = x.dtype();
  const Device dev = x.device();
  const int64_t R = g.T * g.N, GH = g.G * g.H;
  Backend& be = backend_for(x);
  RNNLayerOut out;
  {
    NoGradGuard no_grad;
    if (a.lengths.defined())
      for (double v : a.lengths.tolist()) g.lengths.push_back(int64_t(v));
    s->buf.gates = make_tensor({R, GH}, dt, dev);
    // x W_ih^T + biases for all timesteps in one GEMM (for GRU only b_ih: b_hn sits inside r * (.)).
    const Tensor bias = !b_ih.defined() ? Tensor()
                        : a.mode == RNNMode::GRU ? b_ih.detach()
                                                 : (b_ih.detach() + b_hh.detach()).contiguous();
    be.rnn_input_projection(s->buf.gates, x, w_ih, bias, g);
    s->buf.h_prev = make_tensor({R, g.H}, dt, dev);
    s->buf.aux = a.mode == RNNMode::LSTM || a.mode == RNNMode::GRU ? make_tensor({R, g.H}, dt, dev) : Tensor();
    s->buf.c_prev = a.mode == RNNMode::LSTM ? make_tensor({R, g.H}, dt, dev) : Tensor();
    Shape yshape = x.shape();
    yshape[2] = g.H;
    out.y = make_tensor(yshape, dt, dev);
    out.h_n = make_tensor({g.N, g.H}, dt, dev);
    if (a.mode == RNNMode::LSTM) out.c_n = make_tensor({g.N, g.H}, dt, dev);
    s->w_hh = SavedTensor(w_hh, "rnn_layer");
    be.rnn_forward(g, s->buf, w_hh, b_hh.defined() ? b_hh.detach() : Tensor(), h0, c0, out.y, out.h_n, out.c_n);
  }
  if (!record) return out;
  s->x = SavedTensor(x, "rnn_layer");
  s->w_ih = SavedTensor(w_ih, "rnn_layer");
  s->want = {.x = x.requires_grad(),
             .h0 = h0.defined() && h0.requires_grad(),
             .c0 = c0.defined() && c0.requires_grad(),
             .w_ih = w_ih.requires_grad(),
             .w_hh = w_hh.requires_grad(),
             .bias = b_ih.defined() && (b_ih.requires_grad() || b_hh.requires_grad())};
  std::vector<Tensor> outs{out.y, out.h_n};
  if (a.mode == RNNMode::LSTM) outs.push_back(out.c_n);
  const char* name = a.mode == RNNMode::LSTM ? "LSTMLayer" : a.mode == RNNMode::GRU ? "GRULayer" : "RNNLayer";
  autograd::record(name, outs, {x, h0, c0, w_ih, w_hh, b_ih, b_hh}, [s](const G& g) {
    // The backend writes dh / dc in place while carrying them back through time: private copies.
    const bool lstm = s->geo.cell == RNNMode::LSTM;
    const G grads{g[0].contiguous(), g[1].contiguous().clone(), lstm ? g[2].contiguous().clone() : Tensor()};
    const Tensor& x = s->x.get();
    return backend_for(x).rnn_backward(s->geo, s->buf, x, s->w_ih.get(), s->w_hh.get(), grads, s->want);
  });
  return out;
}

}  // namespace loom::nn
