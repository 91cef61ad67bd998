// Reductions and row kernels: reduce over any set of dims, arg max/min, softmax and log-softmax (forward and
// backward), fused cross-entropy and layer/group norm. A row (or one output of a reduction) is one thread
// block; sums accumulate in double as the CPU backend's do, so float32 results agree to rounding.
#include <math.h>

#include "loom/backend/cuda/common.cuh"

namespace loom::cuda::k {

namespace {

enum R { Sum, Mean, Prod, Max, Min };  // loom::ReduceOp

constexpr int kThreads = 256;

// Block-wide combine of one value per thread; every thread gets the result.
template <class T, class F>
__device__ T block_all(T v, F f) {
  __shared__ T tmp[32];
  for (int o = 16; o > 0; o /= 2) v = f(v, __shfl_xor_sync(0xffffffffu, v, o));
  const int lane = threadIdx.x % 32, warp = threadIdx.x / 32, nw = (blockDim.x + 31) / 32;
  __syncthreads();
  if (lane == 0) tmp[warp] = v;
  __syncthreads();
  v = tmp[0];
  for (int w = 1; w < nw; ++w) v = f(v, tmp[w]);
  return v;
}
struct AddF { __device__ double operator()(double a, double b) const { return a + b; } };
struct MulF { __device__ double operator()(double a, double b) const { return a * b; } };
struct MaxF { __device__ double operator()(double a, double b) const { return (a != a || a > b) ? a : b; } };
struct MinF { __device__ double operator()(double a, double b) const { return (a != a || a < b) ? a : b; } };

// kept: x's sizes/strides over the kept dims (out's order), outv: out's strides over the same dims,
// red: x's sizes/strides over the reduced dims.
__global__ void reduce_kernel(int op, View outv, View kept, View red, int64_t n_out, int64_t n_red) {
  for (int64_t o = blockIdx.x; o < n_out; o += gridDim.x) {
    const int64_t base = offset_of(o, kept);
    double acc = op == Prod ? 1.0 : op == Max ? -INFINITY : op == Min ? INFINITY : 0.0;
    for (int64_t j = threadIdx.x; j < n_red; j += blockDim.x) {
      const double v = load<double>(kept.data, base + offset_of(j, red), kept.dt);
      switch (op) {
        case Prod: acc *= v; break;
        case Max: acc = MaxF()(acc, v); break;
        case Min: acc = MinF()(acc, v); break;
        default: acc += v;
      }
    }
    switch (op) {
      case Prod: acc = block_all(acc, MulF()); break;
      case Max: acc = block_all(acc, MaxF()); break;
      case Min: acc = block_all(acc, MinF()); break;
      default: acc = block_all(acc, AddF());
    }
    if (op == Mean) acc /= double(n_red);
    if (threadIdx.x == 0) store<double>(outv.data, offset_of(o, outv), outv.dt, acc);
  }
}

// rows: x's view without `dim` (the row starts); n, step: the length and stride of dim.
__global__ void arg_kernel(bool is_max, View rows, int64_t n, int64_t step, View vals, View idx, int64_t n_rows) {
  LOOM_GRID_LOOP(r, n_rows) {
    const int64_t base = offset_of(r, rows);
    double best = load<double>(rows.data, base, rows.dt);
    int64_t bi = 0;
    for (int64_t j = 1; j < n && best == best; ++j) {
      const double v = load<double>(rows.data, base + j * step, rows.dt);
      if (v != v || (is_max ? v > best : v < best)) best = v, bi = j;
    }
    store<double>(vals.data, offset_in(r, rows, vals), vals.dt, best);
    static_cast<int64_t*>(idx.data)[offset_in(r, rows, idx)] = bi;
  }
}

// One block per row. rows: a view over every dim but `dim` (for the first operand); the others share the shape.
__global__ void softmax_kernel(View rows, View outrows, int64_t n, int64_t xs, int64_t os, bool log_, int64_t n_rows) {
  for (int64_t r = blockIdx.x; r < n_rows; r += gridDim.x) {
    const int64_t xb = offset_of(r, rows), ob = offset_in(r, rows, outrows);
    double m = -INFINITY;
    for (int64_t j = threadIdx.x; j < n; j += blockDim.x) m = MaxF()(m, load<double>(rows.data, xb + j * xs, rows.dt));
    m = block_all(m, MaxF());
    double s = 0;
    for (int64_t j = threadIdx.x; j < n; j += blockDim.x) s += exp(load<double>(rows.data, xb + j * xs, rows.dt) - m);
    s = block_all(s, AddF());
    const double ls = log(s);
    for (int64_t j = threadIdx.x; j < n; j += blockDim.x) {
      const double z = load<double>(rows.data, xb + j * xs, rows.dt) - m;
      store<double>(outrows.data, ob + j * os, outrows.dt, log_ ? z - ls : exp(z) / s);
    }
  }
}

__global__ void softmax_bwd_kernel(View grows, View yrows, View dxrows, int64_t n, int64_t gs, int64_t ys, int64_t ds,
                                   bool log_, int64_t n_rows) {
  for (int64_t r = blockIdx.x; r < n_rows; r += gridDim.x) {
    const int64_t gb = offset_of(r, grows), yb = offset_in(r, grows, yrows), db = offset_in(r, grows, dxrows);
    double s = 0;
    for (int64_t j = threadIdx.x; j < n; j += blockDim.x) {
      const double g = load<double>(grows.data, gb + j * gs, grows.dt);
      s += log_ ? g : g * load<double>(yrows.data, yb + j * ys, yrows.dt);
    }
    s = block_all(s, AddF());
    for (int64_t j = threadIdx.x; j < n; j += blockDim.x) {
      const double g = load<double>(grows.data, gb + j * gs, grows.dt), y = load<double>(yrows.data, yb + j * ys, yrows.dt);
      store<double>(dxrows.data, db + j * ds, dxrows.dt, log_ ? g - exp(y) * s : y * (g - s));
    }
  }
}

template <class T>
__global__ void ce_fwd_kernel(const T* x, const int64_t* t, const T* w, int64_t R, int64_t C, int64_t S,
                              int64_t ignore, double eps, T* loss, T* lse, double* sums, int* bad) {
  for (int64_t r = blockIdx.x; r < R; r += gridDim.x) {
    const int64_t k = t[r];
    if (k == ignore) {
      if (threadIdx.x == 0) loss[r] = T(0), lse[r] = T(0);
      continue;
    }
    if (k < 0 || k >= C) {
      if (threadIdx.x == 0) *bad = 1, loss[r] = T(0), lse[r] = T(0);
      continue;
    }
    const T* row = x + (r / S) * C * S + r % S;
    double m = -INFINITY;
    for (int64_t c = threadIdx.x; c < C; c += blockDim.x) m = MaxF()(m, double(row[c * S]));
    m = block_all(m, MaxF());
    double acc = 0, smooth = 0;
    for (int64_t c = threadIdx.x; c < C; c += blockDim.x) acc += exp(double(row[c * S]) - m);
    acc = block_all(acc, AddF());
    const double l = m + log(acc);
    if (eps > 0) {
      for (int64_t c = threadIdx.x; c < C; c += blockDim.x) smooth += (w ? double(w[c]) : 1.0) * (l - double(row[c * S]));
      smooth = block_all(smooth, AddF());
    }
    if (threadIdx.x == 0) {
      const double wk = w ? double(w[k]) : 1.0;
      double v = (1.0 - eps) * wk * (l - double(row[k * S]));
      if (eps > 0) v += eps / double(C) * smooth;
      loss[r] = T(v), lse[r] = T(l);
      atomicAdd(&sums[0], double(T(v)));
      atomicAdd(&sums[1], wk);
    }
  }
}

template <class T>
__global__ void ce_bwd_kernel(const T* x, const int64_t* t, const T* w, const T* lse, const T* gout, bool per_row,
                              double scale, int64_t R, int64_t C, int64_t S, int64_t ignore, double eps, double wsum,
                              T* dx) {
  for (int64_t r = blockIdx.x; r < R; r += gridDim.x) {
    const int64_t k = t[r], off = (r / S) * C * S + r % S;
    T* drow = dx + off;
    if (k == ignore || k < 0 || k >= C) {
      for (int64_t c = threadIdx.x; c < C; c += blockDim.x) drow[c * S] = T(0);
      continue;
    }
    const T* row = x + off;
    const double gr = double(per_row ? gout[r] : gout[0]) * scale;
    const double a = (1.0 - eps) * (w ? double(w[k]) : 1.0), b = eps / double(C);
    const double l = double(lse[r]);
    for (int64_t c = threadIdx.x; c < C; c += blockDim.x) {
      const double p = exp(double(row[c * S]) - l);
      double d = a * (p - (c == k ? 1.0 : 0.0));
      if (eps > 0) d += b * (wsum * p - (w ? double(w[c]) : 1.0));
      drow[c * S] = T(gr * d);
    }
  }
}

template <class T>
__global__ void wsum_kernel(const T* w, int64_t C, double* out) {
  double s = 0;
  for (int64_t c = threadIdx.x; c < C; c += blockDim.x) s += double(w[c]);
  s = block_all(s, AddF());
  if (threadIdx.x == 0) *out = s;
}

template <class T>
__global__ void rn_fwd_kernel(const T* x, T* y, int64_t R, int64_t Gr, int64_t D, int64_t S, const T* w, const T* b,
                              double eps, double* mean, double* rstd) {
  const int64_t K = D * S;
  for (int64_t r = blockIdx.x; r < R; r += gridDim.x) {
    const T* p = x + r * K;
    double s = 0;
    for (int64_t k = threadIdx.x; k < K; k += blockDim.x) s += double(p[k]);
    const double m = block_all(s, AddF()) / double(K);
    double q = 0;
    for (int64_t k = threadIdx.x; k < K; k += blockDim.x) q += (double(p[k]) - m) * (double(p[k]) - m);
    const double rs = 1.0 / sqrt(block_all(q, AddF()) / double(K) + eps);
    if (threadIdx.x == 0) mean[r] = m, rstd[r] = rs;
    const int64_t c0 = (r % Gr) * D;
    for (int64_t k = threadIdx.x; k < K; k += blockDim.x) {
      const int64_t d = k / S;
      const double a = rs * (w ? double(w[c0 + d]) : 1.0), sh = (b ? double(b[c0 + d]) : 0.0) - m * a;
      y[r * K + k] = T(double(p[k]) * a + sh);
    }
  }
}

template <class T>
__global__ void rn_bwd_dx_kernel(const T* g, const T* x, int64_t R, int64_t Gr, int64_t D, int64_t S,
                                 const double* mean, const double* rstd, const T* w, T* dx) {
  const int64_t K = D * S;
  for (int64_t r = blockIdx.x; r < R; r += gridDim.x) {
    const T* gp = g + r * K;
    const T* xp = x + r * K;
    const double m = mean[r], rs = rstd[r];
    const int64_t c0 = (r % Gr) * D;
    double s1 = 0, s2 = 0;
    for (int64_t k = threadIdx.x; k < K; k += blockDim.x) {
      const double wc = w ? double(w[c0 + k / S]) : 1.0;
      s1 += double(gp[k]) * wc;
      s2 += double(gp[k]) * (double(xp[k]) - m) * wc;
    }
    s1 = block_all(s1, AddF());
    s2 = block_all(s2, AddF());
    const double k1 = s1 / double(K), k2 = s2 * rs * rs / double(K);
    for (int64_t k = threadIdx.x; k < K; k += blockDim.x) {
      const double wc = w ? double(w[c0 + k / S]) : 1.0;
      dx[r * K + k] = T(rs * (double(gp[k]) * wc - k1 - (double(xp[k]) - m) * k2));
    }
  }
}

// One thread per channel c = gr * D + d and chunk of rows (blockIdx.y): sums over the chunk's rows of group gr and
// the S positions, added to the zeroed accumulators (a few atomics per channel instead of one thread per channel
// walking every row: layer norm's R is batch x tokens).
template <class T>
__global__ void rn_bwd_dw_kernel(const T* g, const T* x, int64_t R, int64_t Gr, int64_t D, int64_t S,
                                 const double* mean, const double* rstd, double* dw, double* db, int64_t rows_per) {
  const int64_t K = D * S, c = int64_t(blockIdx.x) * blockDim.x + threadIdx.x;
  if (c >= Gr * D) return;
  const int64_t gr = c / D, d = c % D;
  const int64_t r0 = int64_t(blockIdx.y) * rows_per, r1 = r0 + rows_per < R ? r0 + rows_per : R;
  double sw = 0, sb = 0;
  for (int64_t r = r0; r < r1; ++r) {
    if (r % Gr != gr) continue;
    const double m = mean[r], rs = rstd[r];
    for (int64_t i = 0; i < S; ++i) {
      const int64_t k = r * K + d * S + i;
      sw += double(g[k]) * (double(x[k]) - m) * rs;
      sb += double(g[k]);
    }
  }
  if (dw) atomicAdd(&dw[c], sw);
  if (db) atomicAdd(&db[c], sb);
}

// A view of x without dim d (rank nd - 1; a 0-d result gets one dim of size 1).
View drop_dim(const View& x, int d) {
  View r = x;
  r.nd = 0;
  for (int i = 0; i < x.nd; ++i)
    if (i != d) r.size[r.nd] = x.size[i], r.stride[r.nd] = x.stride[i], ++r.nd;
  if (r.nd == 0) r.nd = 1, r.size[0] = 1, r.stride[0] = 0;
  return r;
}

int row_threads(int64_t n) { return n >= 256 ? kThreads : n > 64 ? 128 : 32; }

}  // namespace

void reduce(int op, const View& out, const View& x, const bool* reduced) {
  View kept = x, red = x, outv = out;
  kept.nd = red.nd = outv.nd = 0;
  for (int d = 0; d < x.nd; ++d) {
    if (reduced[d]) {
      red.size[red.nd] = x.size[d], red.stride[red.nd] = x.stride[d], ++red.nd;
    } else {
      kept.size[kept.nd] = x.size[d], kept.stride[kept.nd] = x.stride[d];
      outv.size[outv.nd] = out.size[d], outv.stride[outv.nd] = out.stride[d];
      ++kept.nd, ++outv.nd;
    }
  }
  if (kept.nd == 0) kept.nd = outv.nd = 1, kept.size[0] = outv.size[0] = 1, kept.stride[0] = outv.stride[0] = 0;
  if (red.nd == 0) red.nd = 1, red.size[0] = 1, red.stride[0] = 0;
  const int64_t n_out = kept.numel(), n_red = red.numel();
  if (n_out == 0) return;
  reduce_kernel<<<int(n_out < 65535 * 16 ? n_out : 65535 * 16), row_threads(n_red), 0, stream()>>>(op, outv, kept, red,
                                                                                                   n_out, n_red);
  check_launch("reduce");
}

void arg_reduce(bool is_max, const View& values, const View& indices, const View& x, int dim) {
  const View rows = drop_dim(x, dim), vals = drop_dim(values, dim), idx = drop_dim(indices, dim);
  const int64_t n_rows = rows.numel();
  if (n_rows == 0 || x.size[dim] == 0) return;
  arg_kernel<<<blocks_for(n_rows), 256, 0, stream()>>>(is_max, rows, x.size[dim], x.stride[dim], vals, idx, n_rows);
  check_launch("arg_reduce");
}

void softmax(const View& out, const View& x, int dim, bool log) {
  const View rows = drop_dim(x, dim), orows = drop_dim(out, dim);
  const int64_t n_rows = rows.numel(), n = x.size[dim];
  if (n_rows == 0 || n == 0) return;
  softmax_kernel<<<int(n_rows < 65535 * 16 ? n_rows : 65535 * 16), row_threads(n), 0, stream()>>>(
      rows, orows, n, x.stride[dim], out.stride[dim], log, n_rows);
  check_launch("softmax");
}

void softmax_backward(const View& dx, const View& g, const View& y, int dim, bool log) {
  const View grows = drop_dim(g, dim), yrows = drop_dim(y, dim), drows = drop_dim(dx, dim);
  const int64_t n_rows = grows.numel(), n = g.size[dim];
  if (n_rows == 0 || n == 0) return;
  softmax_bwd_kernel<<<int(n_rows < 65535 * 16 ? n_rows : 65535 * 16), row_threads(n), 0, stream()>>>(
      grows, yrows, drows, n, g.stride[dim], y.stride[dim], dx.stride[dim], log, n_rows);
  check_launch("softmax_backward");
}

static int grid_rows(int64_t R) { return int(R < 65535 * 16 ? (R < 1 ? 1 : R) : 65535 * 16); }

void cross_entropy_forward(DType dt, const void* x, const int64_t* target, const void* weight, int64_t N, int64_t C,
                           int64_t S, int64_t ignore, double eps, void* loss, void* lse, double* sums, int* bad) {
  const int64_t R = N * S;
  cudaMemsetAsync(sums, 0, 2 * sizeof(double), stream());
  if (R == 0) return;
  if (dt == DType::f64)
    ce_fwd_kernel<double><<<grid_rows(R), row_threads(C), 0, stream()>>>(
        static_cast<const double*>(x), target, static_cast<const double*>(weight), R, C, S, ignore, eps,
        static_cast<double*>(loss), static_cast<double*>(lse), sums, bad);
  else
    ce_fwd_kernel<float><<<grid_rows(R), row_threads(C), 0, stream()>>>(
        static_cast<const float*>(x), target, static_cast<const float*>(weight), R, C, S, ignore, eps,
        static_cast<float*>(loss), static_cast<float*>(lse), sums, bad);
  check_launch("cross_entropy_forward");
}

void cross_entropy_backward(DType dt, const void* x, const int64_t* target, const void* weight, const void* lse,
                            const void* gout, bool per_row, double scale, int64_t N, int64_t C, int64_t S,
                            int64_t ignore, double eps, void* dx) {
  const int64_t R = N * S;
  if (R == 0) return;
  double wsum = double(C);
  if (weight && eps > 0) {  // sum of the class weights, read back once (label smoothing with weights only)
    double* d = nullptr;
    cudaMallocAsync(reinterpret_cast<void**>(&d), sizeof(double), stream());
    if (dt == DType::f64) wsum_kernel<double><<<1, 256, 0, stream()>>>(static_cast<const double*>(weight), C, d);
    else wsum_kernel<float><<<1, 256, 0, stream()>>>(static_cast<const float*>(weight), C, d);
    cudaMemcpyAsync(&wsum, d, sizeof(double), cudaMemcpyDeviceToHost, stream());
    cudaFreeAsync(d, stream());
    cudaStreamSynchronize(stream());
  }
  if (dt == DType::f64)
    ce_bwd_kernel<double><<<grid_rows(R), row_threads(C), 0, stream()>>>(
        static_cast<const double*>(x), target, static_cast<const double*>(weight), static_cast<const double*>(lse),
        static_cast<const double*>(gout), per_row, scale, R, C, S, ignore, eps, wsum, static_cast<double*>(dx));
  else
    ce_bwd_kernel<float><<<grid_rows(R), row_threads(C), 0, stream()>>>(
        static_cast<const float*>(x), target, static_cast<const float*>(weight), static_cast<const float*>(lse),
        static_cast<const float*>(gout), per_row, scale, R, C, S, ignore, eps, wsum, static_cast<float*>(dx));
  check_launch("cross_entropy_backward");
}

void row_norm_forward(DType dt, const void* x, void* y, int64_t R, int64_t Gr, int64_t D, int64_t S, const void* w,
                      const void* b, double eps, double* mean, double* rstd) {
  if (R == 0) return;
  const int th = row_threads(D * S);
  if (dt == DType::f64)
    rn_fwd_kernel<double><<<grid_rows(R), th, 0, stream()>>>(static_cast<const double*>(x), static_cast<double*>(y), R,
                                                             Gr, D, S, static_cast<const double*>(w),
                                                             static_cast<const double*>(b), eps, mean, rstd);
  else
    rn_fwd_kernel<float><<<grid_rows(R), th, 0, stream()>>>(static_cast<const float*>(x), static_cast<float*>(y), R, Gr,
                                                            D, S, static_cast<const float*>(w),
                                                            static_cast<const float*>(b), eps, mean, rstd);
  check_launch("row_norm_forward");
}

void row_norm_backward(DType dt, const void* g, const void* x, int64_t R, int64_t Gr, int64_t D, int64_t S,
                       const double* mean, const double* rstd, const void* w, void* dx, double* dw, double* db) {
  if (R == 0) return;
  const int th = row_threads(D * S);
  const int64_t CH = Gr * D, chunks = R < 256 ? 1 : 256, rows_per = (R + chunks - 1) / chunks;
  const dim3 dw_grid(unsigned((CH + 255) / 256), unsigned(chunks));
  if (dw) cudaMemsetAsync(dw, 0, size_t(CH) * sizeof(double), stream());
  if (db) cudaMemsetAsync(db, 0, size_t(CH) * sizeof(double), stream());
  if (dt == DType::f64) {
    if (dx)
      rn_bwd_dx_kernel<double><<<grid_rows(R), th, 0, stream()>>>(static_cast<const double*>(g),
                                                                  static_cast<const double*>(x), R, Gr, D, S, mean,
                                                                  rstd, static_cast<const double*>(w),
                                                                  static_cast<double*>(dx));
    if (dw || db)
      rn_bwd_dw_kernel<double><<<dw_grid, 256, 0, stream()>>>(static_cast<const double*>(g),
                                                              static_cast<const double*>(x), R, Gr, D, S, mean, rstd,
                                                              dw, db, rows_per);
  } else {
    if (dx)
      rn_bwd_dx_kernel<float><<<grid_rows(R), th, 0, stream()>>>(static_cast<const float*>(g),
                                                                 static_cast<const float*>(x), R, Gr, D, S, mean, rstd,
                                                                 static_cast<const float*>(w), static_cast<float*>(dx));
    if (dw || db)
      rn_bwd_dw_kernel<float><<<dw_grid, 256, 0, stream()>>>(static_cast<const float*>(g),
                                                             static_cast<const float*>(x), R, Gr, D, S, mean, rstd,
                                                             dw, db, rows_per);
  }
  check_launch("row_norm_backward");
}

}  // namespace loom::cuda::k
