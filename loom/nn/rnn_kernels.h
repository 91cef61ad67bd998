// The fused per-timestep gate kernels behind nn::rnn_layer (internal to loom/nn/rnn_*.cpp).
//   rnn_detail::StepForward<float> s{.N = N, .H = H, .t = t, .gates = {g, 4 * H}, ...};
//   rnn_detail::step_forward(RNNMode::LSTM, s);    // one pass over N x H: gates, c, tanh(c), h, output
// One call covers the batch rows of one timestep (a thread's slice of them): activations, the cell update, the
// next state and the output in a single loop, so a step costs one small GEMM plus one sweep over memory. Rows
// past their sequence's length keep their state, output zero and pass gradients straight through.
#pragma once
#include <bit>
#include <cmath>
#include <cstdint>

#include "loom/nn/rnn_layer.h"

namespace loom::nn::rnn_detail {

// Gate activations that GCC vectorises inside `omp simd` loops without -ffast-math. vec_math.h's vexp clamps
// with std::fmin/fmax and rounds with std::floor, which GCC 12 keeps scalar under default FP semantics, and the
// gate kernel is the one hot loop left once the GEMMs are fast. Here the clamps are comparisons and rounding is
// the 1.5 * 2^23 trick, whose low mantissa bits also give 2^n without a float-to-int conversion. Same
// Cody-Waite reduction and degree-6 polynomial, about 1 ulp; inputs are clamped to [-87, 88] (results stay
// normal: sigmoid and tanh saturate long before) and NaN propagates.
inline float gate_exp(float x) {
  float xc = x < -87.0f ? -87.0f : x;
  xc = xc > 88.0f ? 88.0f : xc;
  constexpr float kRound = 12582912.0f;  // 1.5 * 2^23
  const float t = xc * 1.44269504088896341f + kRound;
  const float n = t - kRound;
  float r = xc - n * 0.693359375f;
  r = r - n * -2.12194440e-4f;
  float p = 1.9875691500e-4f;
  p = p * r + 1.3981999507e-3f;
  p = p * r + 8.3334519073e-3f;
  p = p * r + 4.1665795894e-2f;
  p = p * r + 1.6666665459e-1f;
  p = p * r + 5.0000001201e-1f;
  p = p * r * r + r + 1.0f;
  // t's low 23 bits are 2^22 + n; adding 127 and shifting keeps (n + 127) mod 512 as the exponent field.
  const float scale = std::bit_cast<float>((std::bit_cast<uint32_t>(t) + 127u) << 23);
  return p * scale;
}
inline double gate_exp(double x) { return std::exp(x); }

inline float gate_sigmoid(float x) { return 1.0f / (1.0f + gate_exp(-x)); }
inline double gate_sigmoid(double x) { return 1.0 / (1.0 + std::exp(-x)); }

// An odd polynomial near zero keeps relative accuracy where 1 - 2 / (e^2x + 1) would cancel.
inline float gate_tanh(float x) {
  const float ax = x < 0.0f ? -x : x;
  const float z = x * x;
  float p = -5.70498872745e-3f;
  p = p * z + 2.06390887954e-2f;
  p = p * z - 5.37397155531e-2f;
  p = p * z + 1.33314422036e-1f;
  p = p * z - 3.33332819422e-1f;
  const float small = x + x * z * p;
  const float e = gate_exp(2.0f * (ax > 9.0f ? 9.0f : ax));  // written so that NaN reaches the result
  const float mag = ax > 9.0f ? 1.0f : 1.0f - 2.0f / (e + 1.0f);
  const float big = x < 0.0f ? -mag : mag;
  return ax < 0.625f ? small : big;
}
inline double gate_tanh(double x) { return std::tanh(x); }

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

}  // namespace loom::nn::rnn_detail
