// The fused per-timestep gate kernels behind Backend::rnn_forward / rnn_backward (internal to cpu/rnn*.cpp).
//   rnn_detail::StepForward<float> s{.N = N, .H = H, .t = t, .gates = {g, 4 * H}, ...};
//   rnn_detail::step_forward(RNNMode::LSTM, s);    // one pass over N x H: gates, c, tanh(c), h, output
// One call covers the batch rows of one timestep (a thread's slice of them): activations, the cell update, the
// next state and the output in a single loop, so a step costs one small GEMM plus one sweep over memory. Rows
// past their sequence's length keep their state, output zero and pass gradients straight through.
#pragma once
#include <cmath>
#include <cstdint>

#include "loom/backend/cpu/vec_math.h"
#include "loom/backend/kernel_args.h"

namespace loom::cpu::rnn_detail {

using RNNMode = RNNCell;  // nn::RNNMode is the same enum

// Gate activations: the branch-free, always-inline float versions in vec_math.h (GCC vectorises them inside
// the `omp simd` gate loops without -ffast-math); doubles use libm, as gradcheck wants.
template <class T> LOOM_VEC_INLINE T gate_exp(T x) { return cpu::vexp(x); }
template <class T> LOOM_VEC_INLINE T gate_sigmoid(T x) { return cpu::vsigmoid(x); }
template <class T> LOOM_VEC_INLINE T gate_tanh(T x) { return cpu::vtanh(x); }

// A row-strided matrix: row n starts at p + n * ld (batch_first buffers interleave timesteps).
template <class T>
struct Rows {
  T* p = nullptr;
  int64_t ld = 0;
  T* operator[](int64_t n) const { return p + n * ld; }
};

// One timestep t over N batch rows of H features. Gate blocks are H wide, in PyTorch's order.
template <class T>
struct StepForward {
  int64_t N = 0, H = 0, t = 0;
  const int64_t* lengths = nullptr;  // null: every row is valid at every step
  // In: pre-activations (x W_ih^T + biases, plus h W_hh^T except for GRU). Out: the activated gates.
  Rows<T> gates{};
  Rows<T> gh{};                // GRU only: h W_hh^T, without bias
  const T* b_hh = nullptr;     // GRU only: never null (zeros without bias); its n block is scaled by r
  Rows<T> h_prev{}, c_prev{};  // state before the step (c: LSTM only)
  Rows<T> h_next{}, c_next{};  // state after it
  Rows<T> y{};                 // the step's output
  Rows<T> aux{};               // out, kept for backward. LSTM: tanh(c_next); GRU: W_hn h + b_hn
};

template <class T>
struct StepBackward {
  int64_t N = 0, H = 0, t = 0;
  const int64_t* lengths = nullptr;
  Rows<T> gates{}, h_prev{}, c_prev{}, aux{};  // as the forward step left them
  Rows<T> dy{};                                // gradient of the step's output
  Rows<T> dgi{};  // out: gradient of the input-side pre-activations (zero rows past a sequence's end)
  Rows<T> dgh{};  // out, GRU only: of the hidden-side ones (its n block is dgi's times r)
  // (N, H), contiguous. In: gradient of h after the step. Out: the part of the gradient of h before the step
  // that does not flow through W_hh (zero, or z * dh for GRU; unchanged on rows past their end). The caller
  // then adds dgh W_hh.
  T* dh = nullptr;
  T* dc = nullptr;  // LSTM: gradient of c after the step in, before it out
};

template <class T>
void step_forward(RNNMode mode, const StepForward<T>& s);
template <class T>
void step_backward(RNNMode mode, const StepBackward<T>& s);

}  // namespace loom::cpu::rnn_detail
