// Fused gate kernels for RNN / LSTM / GRU steps. Each inner loop runs over the H features of one batch row with
// every gate block read at the same offset, so `omp simd` vectorises the branch-free gate_sigmoid / gate_tanh
// (rnn_kernels.h) across features; simdlen(16) asks for 512-bit vectors where the CPU has them (GCC otherwise
// prefers 256), which pays off in the transcendental-heavy forward loops but not in the memory-bound backward
// ones. Kernels are serial: rnn_layer splits the batch across threads for the whole time loop instead.
#include "loom/backend/cpu/rnn_kernels.h"

#include <algorithm>
#include <cstring>

namespace loom::cpu::rnn_detail {

namespace {


template <class F>
void for_rows(int64_t N, F&& f) {
  for (int64_t n = 0; n < N; ++n) f(n);
}

inline bool valid(const int64_t* lengths, int64_t n, int64_t t) { return !lengths || t < lengths[n]; }

// A row past its sequence's end: the state carries over unchanged and the output is zero, as in a packed
// sequence where the row simply is not there.
template <class T>
void carry(const StepForward<T>& s, int64_t n, bool has_c) {
  std::memcpy(s.h_next[n], s.h_prev[n], size_t(s.H) * sizeof(T));
  if (has_c) std::memcpy(s.c_next[n], s.c_prev[n], size_t(s.H) * sizeof(T));
  std::fill(s.y[n], s.y[n] + s.H, T(0));
}

template <class T>
void lstm_forward(const StepForward<T>& s) {
  const int64_t H = s.H;
  for_rows(s.N, [&](int64_t n) {
    if (!valid(s.lengths, n, s.t)) return carry(s, n, true);
    T* g = s.gates[n];
    const T* cp = s.c_prev[n];
    T *hn = s.h_next[n], *cn = s.c_next[n], *y = s.y[n], *tc = s.aux[n];
#pragma omp simd simdlen(16)
    for (int64_t j = 0; j < H; ++j) {
      const T i = gate_sigmoid(g[j]), f = gate_sigmoid(g[H + j]);
      const T gg = gate_tanh(g[2 * H + j]), o = gate_sigmoid(g[3 * H + j]);
      const T c = f * cp[j] + i * gg;
      const T th = gate_tanh(c);
      g[j] = i;
      g[H + j] = f;
      g[2 * H + j] = gg;
      g[3 * H + j] = o;
      cn[j] = c;
      tc[j] = th;
      hn[j] = o * th;
      y[j] = o * th;
    }
  });
}

template <class T>
void lstm_backward(const StepBackward<T>& s) {
  const int64_t H = s.H;
  for_rows(s.N, [&](int64_t n) {
    T* dg = s.dgi[n];
    if (!valid(s.lengths, n, s.t)) return std::fill(dg, dg + 4 * H, T(0));
    const T *g = s.gates[n], *cp = s.c_prev[n], *tc = s.aux[n], *dy = s.dy[n];
    T *dh = s.dh + n * H, *dc = s.dc + n * H;
#pragma omp simd
    for (int64_t j = 0; j < H; ++j) {
      const T i = g[j], f = g[H + j], gg = g[2 * H + j], o = g[3 * H + j], th = tc[j];
      const T dht = dh[j] + dy[j];
      const T dct = dc[j] + dht * o * (T(1) - th * th);
      dg[j] = dct * gg * i * (T(1) - i);
      dg[H + j] = dct * cp[j] * f * (T(1) - f);
      dg[2 * H + j] = dct * i * (T(1) - gg * gg);
      dg[3 * H + j] = dht * th * o * (T(1) - o);
      dc[j] = dct * f;
      dh[j] = T(0);
    }
  });
}

template <class T>
void gru_forward(const StepForward<T>& s) {
  const int64_t H = s.H;
  const T* b = s.b_hh;
  for_rows(s.N, [&](int64_t n) {
    if (!valid(s.lengths, n, s.t)) return carry(s, n, false);
    T* g = s.gates[n];
    const T *gh = s.gh[n], *hp = s.h_prev[n];
    T *hn = s.h_next[n], *y = s.y[n], *a = s.aux[n];
#pragma omp simd simdlen(16)
    for (int64_t j = 0; j < H; ++j) {
      const T r = gate_sigmoid(g[j] + gh[j] + b[j]);
      const T z = gate_sigmoid(g[H + j] + gh[H + j] + b[H + j]);
      const T hl = gh[2 * H + j] + b[2 * H + j];
      const T nn = gate_tanh(g[2 * H + j] + r * hl);
      const T h = (hp[j] - nn) * z + nn;  // (1 - z) * n + z * h, in PyTorch's order of operations
      g[j] = r;
      g[H + j] = z;
      g[2 * H + j] = nn;
      a[j] = hl;
      hn[j] = h;
      y[j] = h;
    }
  });
}

template <class T>
void gru_backward(const StepBackward<T>& s) {
  const int64_t H = s.H;
  for_rows(s.N, [&](int64_t n) {
    T *di = s.dgi[n], *dhh = s.dgh[n];
    if (!valid(s.lengths, n, s.t)) {
      std::fill(di, di + 3 * H, T(0));
      std::fill(dhh, dhh + 3 * H, T(0));
      return;
    }
    const T *g = s.gates[n], *hp = s.h_prev[n], *a = s.aux[n], *dy = s.dy[n];
    T* dh = s.dh + n * H;
#pragma omp simd
    for (int64_t j = 0; j < H; ++j) {
      const T r = g[j], z = g[H + j], nn = g[2 * H + j];
      const T dht = dh[j] + dy[j];
      const T dn = dht * (T(1) - z) * (T(1) - nn * nn);
      const T dz = dht * (hp[j] - nn) * z * (T(1) - z);
      const T dr = dn * a[j] * r * (T(1) - r);
      di[j] = dr;
      di[H + j] = dz;
      di[2 * H + j] = dn;
      dhh[j] = dr;
      dhh[H + j] = dz;
      dhh[2 * H + j] = dn * r;
      dh[j] = dht * z;
    }
  });
}

template <class T, bool relu>
void simple_forward(const StepForward<T>& s) {
  const int64_t H = s.H;
  for_rows(s.N, [&](int64_t n) {
    if (!valid(s.lengths, n, s.t)) return carry(s, n, false);
    T* g = s.gates[n];
    T *hn = s.h_next[n], *y = s.y[n];
#pragma omp simd simdlen(16)
    for (int64_t j = 0; j < H; ++j) {
      T h;
      if constexpr (relu)
        h = std::max(g[j], T(0));
      else
        h = gate_tanh(g[j]);
      g[j] = h;
      hn[j] = h;
      y[j] = h;
    }
  });
}

template <class T, bool relu>
void simple_backward(const StepBackward<T>& s) {
  const int64_t H = s.H;
  for_rows(s.N, [&](int64_t n) {
    T* dg = s.dgi[n];
    if (!valid(s.lengths, n, s.t)) return std::fill(dg, dg + H, T(0));
    const T *g = s.gates[n], *dy = s.dy[n];
    T* dh = s.dh + n * H;
#pragma omp simd
    for (int64_t j = 0; j < H; ++j) {
      const T h = g[j], dht = dh[j] + dy[j];
      if constexpr (relu)
        dg[j] = h > T(0) ? dht : T(0);
      else
        dg[j] = dht * (T(1) - h * h);
      dh[j] = T(0);
    }
  });
}

}  // namespace

template <class T>
void step_forward(RNNMode mode, const StepForward<T>& s) {
  switch (mode) {
    case RNNMode::LSTM: return lstm_forward(s);
    case RNNMode::GRU: return gru_forward(s);
    case RNNMode::RNN_TANH: return simple_forward<T, false>(s);
    case RNNMode::RNN_RELU: return simple_forward<T, true>(s);
  }
}

template <class T>
void step_backward(RNNMode mode, const StepBackward<T>& s) {
  switch (mode) {
    case RNNMode::LSTM: return lstm_backward(s);
    case RNNMode::GRU: return gru_backward(s);
    case RNNMode::RNN_TANH: return simple_backward<T, false>(s);
    case RNNMode::RNN_RELU: return simple_backward<T, true>(s);
  }
}

template void step_forward<float>(RNNMode, const StepForward<float>&);
template void step_forward<double>(RNNMode, const StepForward<double>&);
template void step_backward<float>(RNNMode, const StepBackward<float>&);
template void step_backward<double>(RNNMode, const StepBackward<double>&);

}  // namespace loom::cpu::rnn_detail
