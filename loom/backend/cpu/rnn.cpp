// The fused recurrent layer's compute behind Backend::rnn_input_projection / rnn_forward / rnn_backward (the
// op, nn/rnn_layer.cpp, checks arguments and records autograd). Forward: one GEMM projects every timestep's
// input (x W_ih^T + bias), then each step adds h W_hh^T with one small GEMM into that step's slice and runs one
// fused gate kernel (rnn_kernels.h). Backward: the reverse time loop runs the gate-gradient kernel and one small
// GEMM (dgates W_hh) per step, then the weight and input gradients come from GEMMs over all timesteps at once.
// The per-step products use W_hh packed once per call (rnn_gemm.h) in float32.
//
// Buffers share x's row order: row (t, n) is t * ts + n * bs, so the big GEMMs read and write them without
// transposes and a step's N rows are a strided matrix the small GEMM takes as is.
#include <algorithm>
#include <type_traits>
#include <vector>

#include "loom/backend/cpu/cpu_backend.h"
#include "loom/backend/cpu/rnn_gemm.h"
#include "loom/backend/cpu/rnn_kernels.h"
#include "loom/core/dispatch.h"

namespace loom::cpu {

namespace {

using G = std::vector<Tensor>;
using RNNMode = RNNCell;

// One layer call: its geometry, the buffers forward fills and backward reads, and what backward must produce.
struct Saved {
  RNNMode mode;
  bool reverse;
  int64_t T, N, I, H, G;
  int64_t ts, bs;
  Tensor x, w_ih, w_hh;
  Tensor gates, h_prev, c_prev, aux;
  std::vector<int64_t> lengths;
  bool gx = false, gh0 = false, gc0 = false, gw_ih = false, gw_hh = false, gb = false;
};

Saved saved(const RNNGeom& g, const RNNBuffers& b) {
  Saved s{g.cell, g.reverse, g.T, g.N, g.I, g.H, g.G, g.ts, g.bs, {}, {}, {}, b.gates, b.h_prev, b.c_prev, b.aux,
          g.lengths};
  return s;
}

Backend& backend() { return backend_for(Device{}); }

Tensor filled(const Shape& shape, DType dt, double v, Device d) {
  Tensor t = make_tensor(shape, dt, d);
  backend().fill(t, v);
  return t;
}

void gemm(DType dt, bool ta, bool tb, int64_t M, int64_t N, int64_t K, const void* A, int64_t lda, const void* B,
          int64_t ldb, double beta, void* C, int64_t ldc) {
  backend().gemm(ta, tb, M, N, K, 1.0, A, lda, B, ldb, beta, C, ldc, dt);
}

// The time loop runs on slices of the batch, each slice through all T steps on one thread. Batch rows never
// interact, so slices need no synchronisation at all: splitting each step's GEMM instead costs a barrier per step,
// and on two busy cores every barrier can wait out a scheduler time slice. Slices are 8 rows (the small GEMM's
// tile height, so nothing is lost per step) and handed out dynamically, so a thread that shares its core with
// another process simply takes fewer. Small problems stay on one thread.
template <class F>
void for_slices(int64_t N, int64_t work_per_step, F&& f) {
  const int64_t rows = N >= 16 ? 8 : 4, slices = (N + rows - 1) / rows;
  const int P = int(std::min<int64_t>(get_num_threads(), slices));
  if (P <= 1 || work_per_step < (int64_t(1) << 17)) return f(int64_t(0), N);
#pragma omp parallel for schedule(dynamic, 1) num_threads(P)
  for (int64_t i = 0; i < slices; ++i) f(i * rows, std::min(N, (i + 1) * rows));
}

// Raw pointers of one layer call, taken before any parallel region (data<T>() checks can throw).
template <class T>
struct Ptrs {
  T *gates = nullptr, *h_prev = nullptr, *c_prev = nullptr, *aux = nullptr, *y = nullptr;
  T *h_n = nullptr, *c_n = nullptr, *gh = nullptr;  // forward outputs, GRU scratch (N, G * H)
  const T *w_hh = nullptr, *b_hh = nullptr, *h0 = nullptr, *c0 = nullptr;
  const rnn_detail::PackedWeights* packed = nullptr;  // float32: W_hh^T (forward) or W_hh (backward), packed once
  T *dy = nullptr, *dh = nullptr, *dc = nullptr, *dgi = nullptr, *dgh = nullptr;  // backward
  const int64_t* lengths = nullptr;
};

template <class T>
T* ptr_or_null(const Tensor& t) {
  return t.defined() ? t.data<T>() : nullptr;
}

// Rows (t, n0 .. n1) of a buffer in x's row order, `width` values per row.
template <class T>
rnn_detail::Rows<T> step_rows(const Saved& s, T* base, int64_t t, int64_t n0, int64_t width) {
  return {base ? base + (t * s.ts + n0 * s.bs) * width : nullptr, s.bs * width};
}

// The forward recurrence for batch rows [n0, n1).
template <class T>
void forward_slice(const Saved& s, const Ptrs<T>& p, int64_t n0, int64_t n1) {
  const int64_t T_ = s.T, N = n1 - n0, H = s.H, GH = s.G * s.H;
  const bool lstm = s.mode == RNNMode::LSTM, gru = s.mode == RNNMode::GRU;
  const DType dt = dtype_of<T>::value;
  for (int64_t k = 0; k < T_; ++k) {
    const int64_t t = s.reverse ? T_ - 1 - k : k;
    rnn_detail::StepForward<T> st{.N = N, .H = H, .t = t, .lengths = p.lengths ? p.lengths + n0 : nullptr};
    st.gates = step_rows(s, p.gates, t, n0, GH);
    st.h_prev = step_rows(s, p.h_prev, t, n0, H);
    st.c_prev = step_rows(s, p.c_prev, t, n0, H);
    st.y = step_rows(s, p.y, t, n0, H);
    st.aux = step_rows(s, p.aux, t, n0, H);
    if (k == 0)  // the initial states (zeros when absent) become the first step's "previous" rows
      for (int64_t n = 0; n < N; ++n)
        for (int64_t j = 0; j < H; ++j) {
          st.h_prev[n][j] = p.h0 ? p.h0[(n0 + n) * H + j] : T(0);
          if (lstm) st.c_prev[n][j] = p.c0 ? p.c0[(n0 + n) * H + j] : T(0);
        }
    // h W_hh^T: into the gates, or for GRU apart from them (its n block is scaled by r before joining them).
    if (gru) {
      st.gh = {p.gh + n0 * GH, GH};
      st.b_hh = p.b_hh;
    }
    rnn_detail::Rows<T> out = gru ? st.gh : st.gates;
    if constexpr (std::is_same_v<T, float>)
      rnn_detail::gemm_packed(N, st.h_prev.p, st.h_prev.ld, *p.packed, !gru, out.p, out.ld);
    else
      gemm(dt, false, true, N, GH, H, st.h_prev.p, st.h_prev.ld, p.w_hh, H, gru ? 0.0 : 1.0, out.p, out.ld);
    if (k + 1 < T_) {
      const int64_t tn = s.reverse ? t - 1 : t + 1;
      st.h_next = step_rows(s, p.h_prev, tn, n0, H);
      st.c_next = step_rows(s, p.c_prev, tn, n0, H);
    } else {
      st.h_next = {p.h_n + n0 * H, H};
      st.c_next = {lstm ? p.c_n + n0 * H : nullptr, H};
    }
    rnn_detail::step_forward(s.mode, st);
  }
}

// Backpropagation through time for batch rows [n0, n1): gate gradients into dgi / dgh, and dh / dc carried back
// to the initial states.
template <class T>
void backward_slice(const Saved& s, const Ptrs<T>& p, int64_t n0, int64_t n1) {
  const int64_t T_ = s.T, N = n1 - n0, H = s.H, GH = s.G * s.H;
  const DType dt = dtype_of<T>::value;
  for (int64_t k = T_ - 1; k >= 0; --k) {
    const int64_t t = s.reverse ? T_ - 1 - k : k;
    rnn_detail::StepBackward<T> st{.N = N, .H = H, .t = t, .lengths = p.lengths ? p.lengths + n0 : nullptr};
    st.gates = step_rows(s, p.gates, t, n0, GH);
    st.h_prev = step_rows(s, p.h_prev, t, n0, H);
    st.c_prev = step_rows(s, p.c_prev, t, n0, H);
    st.aux = step_rows(s, p.aux, t, n0, H);
    st.dy = step_rows(s, p.dy, t, n0, H);
    st.dgi = step_rows(s, p.dgi, t, n0, GH);
    st.dgh = step_rows(s, p.dgh, t, n0, GH);
    st.dh = p.dh + n0 * H;
    st.dc = p.dc ? p.dc + n0 * H : nullptr;
    rnn_detail::step_backward(s.mode, st);
    if (k == 0 && !s.gh0) continue;  // dh0 is not wanted
    if constexpr (std::is_same_v<T, float>)
      rnn_detail::gemm_packed(N, st.dgh.p, st.dgh.ld, *p.packed, true, st.dh, H);
    else
      gemm(dt, false, false, N, H, GH, st.dgh.p, st.dgh.ld, p.w_hh, H, 1.0, st.dh, H);
  }
}

template <class T>
void forward_loop(const Saved& s, const Tensor& h0, const Tensor& c0, const Tensor& b_hh, Tensor& y, Tensor& h_n,
                  Tensor& c_n) {
  const int64_t GH = s.G * s.H;
  const bool gru = s.mode == RNNMode::GRU;
  Tensor gh = gru ? make_tensor({s.N, GH}, y.dtype(), y.device()) : Tensor();
  Tensor bias = gru ? (b_hh.defined() ? b_hh : filled({GH}, y.dtype(), 0.0, y.device())) : Tensor();
  Ptrs<T> p;
  p.gates = s.gates.data<T>();
  p.h_prev = s.h_prev.data<T>();
  p.c_prev = ptr_or_null<T>(s.c_prev);
  p.aux = ptr_or_null<T>(s.aux);
  p.y = y.data<T>();
  p.h_n = h_n.data<T>();
  p.c_n = ptr_or_null<T>(c_n);
  p.gh = ptr_or_null<T>(gh);
  p.w_hh = s.w_hh.data<T>();
  p.b_hh = ptr_or_null<T>(bias);
  p.h0 = ptr_or_null<T>(h0);
  p.c0 = ptr_or_null<T>(c0);
  p.lengths = s.lengths.empty() ? nullptr : s.lengths.data();
  rnn_detail::PackedWeights packed;
  if constexpr (std::is_same_v<T, float>) {
    packed = rnn_detail::pack_weights(p.w_hh, s.H, GH, s.H, /*transpose=*/true);
    p.packed = &packed;
  }
  for_slices(s.N, s.N * GH * s.H, [&](int64_t n0, int64_t n1) { forward_slice(s, p, n0, n1); });
}

template <class T>
G backward_loop(const Saved& s, const G& g) {
  const int64_t H = s.H, I = s.I, GH = s.G * s.H, R = s.T * s.N;
  const DType dt = g[0].dtype();
  const bool gru = s.mode == RNNMode::GRU;
  const Tensor& x = s.x;
  const Tensor& w_ih = s.w_ih;
  const Tensor& dy = g[0];
  const Tensor& dh = g[1];
  const Tensor& dc = g[2];
  Tensor dgi = make_tensor({R, GH}, dt, x.device());
  Tensor dgh = gru ? make_tensor({R, GH}, dt, x.device()) : dgi;
  Ptrs<T> p;
  p.gates = s.gates.data<T>();
  p.h_prev = s.h_prev.data<T>();
  p.c_prev = ptr_or_null<T>(s.c_prev);
  p.aux = ptr_or_null<T>(s.aux);
  p.w_hh = s.w_hh.data<T>();
  p.dy = dy.data<T>();
  p.dh = dh.data<T>();
  p.dc = ptr_or_null<T>(dc);
  p.dgi = dgi.data<T>();
  p.dgh = dgh.data<T>();
  p.lengths = s.lengths.empty() ? nullptr : s.lengths.data();
  rnn_detail::PackedWeights packed;
  if constexpr (std::is_same_v<T, float>) {
    packed = rnn_detail::pack_weights(p.w_hh, GH, H, H, /*transpose=*/false);
    p.packed = &packed;
  }
  for_slices(s.N, s.N * GH * H, [&](int64_t n0, int64_t n1) { backward_slice(s, p, n0, n1); });

  // Everything that sums over timesteps is one GEMM over all T * N rows.
  G out(7);
  if (s.gx) {
    out[0] = make_tensor(x.shape(), dt, x.device());
    if constexpr (std::is_same_v<T, float>) {
      const rnn_detail::PackedWeights w = rnn_detail::pack_weights(w_ih.data<float>(), GH, I, I, false);
      rnn_detail::gemm_packed_rows(R, dgi.data<float>(), GH, w, false, out[0].data<float>(), I);
    } else {
      gemm(dt, false, false, R, I, GH, dgi.data<T>(), GH, w_ih.data<T>(), I, 0.0, out[0].data<T>(), I);
    }
  }
  if (s.gh0) out[1] = dh;
  if (s.gc0) out[2] = dc;
  if (s.gw_ih) {
    out[3] = make_tensor({GH, I}, dt, x.device());
    gemm(dt, true, false, GH, I, R, dgi.data<T>(), GH, x.data<T>(), I, 0.0, out[3].data<T>(), I);
  }
  if (s.gw_hh) {
    out[4] = make_tensor({GH, H}, dt, x.device());
    gemm(dt, true, false, GH, H, R, dgh.data<T>(), GH, s.h_prev.data<T>(), H, 0.0, out[4].data<T>(), H);
  }
  if (s.gb) {
    // Column sums as a (1, R) x (R, GH) product, so they run on the BLAS threads too.
    Tensor ones_r = filled({R}, dt, 1.0, x.device());
    out[5] = make_tensor({GH}, dt, x.device());
    gemm(dt, false, false, 1, GH, R, ones_r.data<T>(), R, dgi.data<T>(), GH, 0.0, out[5].data<T>(), GH);
    if (gru) {
      out[6] = make_tensor({GH}, dt, x.device());
      gemm(dt, false, false, 1, GH, R, ones_r.data<T>(), R, dgh.data<T>(), GH, 0.0, out[6].data<T>(), GH);
    } else {
      out[6] = out[5];  // b_ih and b_hh enter the sum identically
    }
  }
  return out;
}

}  // namespace

void CpuBackend::rnn_input_projection(Tensor& gates, const Tensor& x, const Tensor& w_ih, const Tensor& bias,
                                      const RNNGeom& g) {
  const int64_t R = g.T * g.N, GH = g.G * g.H;
  if (x.dtype() == DType::f32) {
    const rnn_detail::PackedWeights wt = rnn_detail::pack_weights(w_ih.data<float>(), g.I, GH, g.I, true);
    rnn_detail::gemm_packed_rows(R, x.data<float>(), g.I, wt, false, gates.data<float>(), GH,
                                 bias.defined() ? bias.data<float>() : nullptr);
  } else {
    if (bias.defined()) copy(gates, bias);
    gemm(false, true, R, GH, g.I, 1.0, x.raw_data(), g.I, w_ih.raw_data(), g.I, bias.defined() ? 1.0 : 0.0,
         gates.raw_data(), GH, x.dtype());
  }
}

void CpuBackend::rnn_forward(const RNNGeom& g, const RNNBuffers& buf, const Tensor& w_hh, const Tensor& b_hh,
                             const Tensor& h0, const Tensor& c0, Tensor& y, Tensor& h_n, Tensor& c_n) {
  Saved s = saved(g, buf);
  s.w_hh = w_hh;
  dispatch_float(y.dtype(), "rnn_layer", [&]<class T>() { forward_loop<T>(s, h0, c0, b_hh, y, h_n, c_n); });
}

std::vector<Tensor> CpuBackend::rnn_backward(const RNNGeom& g, const RNNBuffers& buf, const Tensor& x,
                                             const Tensor& w_ih, const Tensor& w_hh, const std::vector<Tensor>& grads,
                                             const RNNGradFlags& want) {
  Saved s = saved(g, buf);
  s.x = x, s.w_ih = w_ih, s.w_hh = w_hh;
  s.gx = want.x, s.gh0 = want.h0, s.gc0 = want.c0, s.gw_ih = want.w_ih, s.gw_hh = want.w_hh, s.gb = want.bias;
  return dispatch_float(grads[0].dtype(), "rnn_layer backward", [&]<class T>() { return backward_loop<T>(s, grads); });
}

}  // namespace loom::cpu
