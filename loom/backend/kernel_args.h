// Argument structs of the Backend's fused kernel families (norms, attention, cross-entropy, optimizer updates,
// recurrent layers). Ops fill them from their checked arguments and hand them to backend_for(device):
//   backend_for(x).row_norm_forward(y, mean, rstd, x, w, b, RowNormGeom{.R = rows, .Gr = 1, .D = K, .S = 1}, 1e-5);
// They hold sizes and scalars only (plus tensors), so a device backend reads them without any host pointer.
#pragma once
#include <cstdint>
#include <vector>

#include "loom/core/tensor.h"

namespace loom {

// ---- norms
// Batch norm: x read as (N, C, S) contiguous, statistics per channel over N * S values.
struct BatchNormGeom {
  int64_t N = 0, C = 0, S = 0;
};
// Layer norm and group norm: R rows of K = D * S values, statistics per row. The affine parameters are per
// channel: element (d, s) of row r belongs to channel (r % Gr) * D + d. Layer norm is Gr = 1, D = K, S = 1;
// group norm is R = N * groups, Gr = groups, D = C / groups, S = spatial size.
struct RowNormGeom {
  int64_t R = 0, Gr = 1, D = 0, S = 1;
  int64_t K() const { return D * S; }
};

// ---- attention: q (BH, Tq, D), k (BH, Tk, D), v (BH, Tk, Dv), out (BH, Tq, Dv), lse (BH, Tq).
struct AttnShape {
  int64_t BH, Tq, Tk, D, Dv;
  double scale;
  bool causal;  // key j is seen by query i iff j <= i
  // Forward only: elements between consecutive (b, h) slices of k and v (0: packed, Tk * D). Lets a KV cache's
  // first Tk rows of a (B, H, max_len, D) buffer be read in place instead of copied every decode step.
  int64_t k_bh_stride = 0, v_bh_stride = 0;
  // Forward only, decoding from slotted caches (slot_attention, continuous batching): (b, h)'s keys and values
  // start at element kv_bh_offset[bh] of k and of v (caches of one layout) and number bh_keys[bh] <= Tk, so
  // each sequence reads its own slot in place, only as far as it is filled. Empty: the strides above, Tk keys.
  std::vector<int64_t> kv_bh_offset = {}, bh_keys = {};
  // Where (b, h)'s rows lie in q, k, v and out (their gradients laid out alike), for heads read in place from
  // a model's (B, T, ...) activations: heads == 0 is the packed (BH, T, D) layout above; otherwise slice bh =
  // b * heads + h starts at b * b_stride + h * h_stride and its rows are row_stride apart (GPT's fused q/k/v
  // projection: b_stride = T * 3C, h_stride = D, row_stride = 3C, so no split into heads is copied). Only on a
  // backend whose attention_layouts() says so, and not with kv_bh_offset or the k/v strides above.
  struct Layout {
    int64_t heads = 0, b_stride = 0, h_stride = 0, row_stride = 0;
  };
  Layout q_layout, k_layout, v_layout, o_layout;
};
// An optional mask read in place (it may be broadcast): element (bh, i, j) is at t's storage offset
// bh_offset[bh] + i * si + j * sj. t is bool (true = attend) or q's float type (added to the scaled score);
// undefined t: no mask.
struct AttentionMask {
  Tensor t;
  std::vector<int64_t> bh_offset;
  int64_t si = 0, sj = 0;
};

// ---- cross-entropy with class-index targets over logits read as (N, C, S): row r = (n, s).
struct CrossEntropyGeom {
  int64_t N = 1, C = 1, S = 1;
  int64_t ignore_index = -100;
  double label_smoothing = 0;
};

// ---- optimizer updates: one fused pass over a parameter, its gradient and its state buffers.
enum class OptimizerKind { SGD, Adam, RMSprop, Adagrad };
struct OptimizerUpdate {
  OptimizerKind kind = OptimizerKind::SGD;
  double lr = 0, weight_decay = 0, eps = 0;
  double momentum = 0, dampening = 0;  // SGD, RMSprop (momentum)
  bool nesterov = false, first = false;  // SGD: first step with momentum (the buffer takes the gradient as is)
  double beta1 = 0, beta2 = 0;  // Adam
  double step_size = 0, bias_correction2_sqrt = 0;  // Adam: lr / (1 - beta1^t), sqrt(1 - beta2^t)
  bool decoupled = false, amsgrad = false;  // Adam: AdamW's decay on the parameter; amsgrad max in state 2
  double alpha = 0;  // RMSprop smoothing
  bool centered = false;  // RMSprop: state 2 holds the gradient average
  bool maximize = false;
};

// ---- recurrent layers (nn::rnn_layer): the time loop over a whole sequence, as one entry.
enum class RNNCell { RNN_TANH, RNN_RELU, LSTM, GRU };
struct RNNGeom {
  RNNCell cell = RNNCell::LSTM;
  bool reverse = false;
  int64_t T = 0, N = 0, I = 0, H = 0, G = 1;  // steps, batch, input, hidden, gate blocks
  int64_t ts = 0, bs = 0;  // row of (t, n) = t * ts + n * bs in the (T * N, .) buffers
  std::vector<int64_t> lengths;  // per batch row; empty: all T
};
// Which gradients rnn_backward computes (the others come back undefined).
struct RNNGradFlags {
  bool x = false, h0 = false, c0 = false, w_ih = false, w_hh = false, bias = false;
};
// The buffers one layer call shares between forward and backward, rows in x's order (see RNNGeom).
struct RNNBuffers {
  Tensor gates;   // (T * N, G * H): input projections in, activated gates out
  Tensor h_prev;  // (T * N, H): state before each step
  Tensor c_prev;  // LSTM: cell state before each step
  Tensor aux;     // LSTM: tanh(c); GRU: W_hn h + b_hn
};

}  // namespace loom
