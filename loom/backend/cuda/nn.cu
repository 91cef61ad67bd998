// Layer kernels: fused optimizer updates, indexing (embedding rows, gather/scatter), GPT's head split,
// attention forward/backward, and the im2col / col2im / pooling pieces of convolution.
// Attention is the plain correct version first: one warp per query row (forward, dq) or key row (dk, dv) with
// an online softmax over the keys, recomputing scores from the saved logsumexp as the CPU kernel does.
#include <math.h>

#include "loom/backend/cuda/common.cuh"

namespace loom::cuda::k {

namespace {

enum Opt { SGD, Adam, RMSprop, Adagrad };  // loom::OptimizerKind

template <class T>
__global__ void optim_kernel(OptimArgs o, T* P, const T* G, T* S0, T* S1, T* S2, int64_t n) {
  LOOM_GRID_LOOP(i, n) {
    T p = P[i], g = o.maximize ? -G[i] : G[i];
    switch (o.kind) {
      case SGD: {
        if (o.weight_decay != 0) g = g + T(o.weight_decay) * p;
        if (S0) {
          const T b = o.first ? g : S0[i] * T(o.momentum) + T(1 - o.dampening) * g;
          S0[i] = b;
          g = o.nesterov ? g + T(o.momentum) * b : b;
        }
        P[i] = p + T(-o.lr) * g;
        break;
      }
      case Adam: {
        if (o.decoupled) p = p * T(1 - o.lr * o.weight_decay);
        else if (o.weight_decay != 0) g = g + T(o.weight_decay) * p;
        const T m = S0[i] * T(o.beta1) + T(1 - o.beta1) * g;
        T v = S1[i] * T(o.beta2) + T(1 - o.beta2) * g * g;
        S0[i] = m, S1[i] = v;
        if (S2) v = S2[i] = (S2[i] > v ? S2[i] : v);
        P[i] = p + T(-o.step_size) * (m / (sqrt(v) / T(o.bias_correction2_sqrt) + T(o.eps)));
        break;
      }
      case RMSprop: {  // S0 square average, S1 momentum buffer, S2 gradient average (centered)
        if (o.weight_decay != 0) g = g + T(o.weight_decay) * p;
        const T sq = S0[i] * T(o.alpha) + T(1 - o.alpha) * g * g;
        S0[i] = sq;
        T avg;
        if (S2) {
          const T ga = S2[i] * T(o.alpha) + T(1 - o.alpha) * g;
          S2[i] = ga;
          avg = sqrt(sq + T(-1) * ga * ga);
        } else {
          avg = sqrt(sq);
        }
        avg = avg + T(o.eps);
        if (S1) {
          const T b = S1[i] * T(o.momentum) + g / avg;
          S1[i] = b;
          P[i] = p + T(-o.lr) * b;
        } else {
          P[i] = p + T(-o.lr) * (g / avg);
        }
        break;
      }
      case Adagrad: {
        if (o.weight_decay != 0) g = g + T(o.weight_decay) * p;
        S0[i] = S0[i] + g * g;
        P[i] = p + T(-o.lr) * (g / (sqrt(S0[i]) + T(o.eps)));
        break;
      }
    }
  }
}

// View (outer, D, inner) around dim of a view's sizes.
struct ODI {
  int64_t outer = 1, D = 1, inner = 1;
};
ODI odi(const View& v, int dim) {
  ODI r;
  for (int d = 0; d < dim; ++d) r.outer *= v.size[d];
  r.D = v.nd ? v.size[dim] : 1;
  for (int d = dim + 1; d < v.nd; ++d) r.inner *= v.size[d];
  return r;
}

__device__ __forceinline__ int64_t wrap(int64_t i, int64_t D) { return i < 0 ? i + D : i; }

// Contiguous x and out: out (outer, K, inner) = x (outer, D, inner) at the indexed rows.
template <class W>
__global__ void index_select_kernel(const W* x, W* out, const int64_t* idx, int64_t outer, int64_t D, int64_t K,
                                    int64_t inner) {
  LOOM_GRID_LOOP(e, outer * K * inner) {
    const int64_t j = e % inner, k = (e / inner) % K, o = e / (inner * K);
    out[e] = x[(o * D + wrap(idx[k], D)) * inner + j];
  }
}

template <class T>
__global__ void index_add_kernel(T* out, const T* src, const int64_t* idx, int64_t outer, int64_t D, int64_t K,
                                 int64_t inner) {
  LOOM_GRID_LOOP(e, outer * K * inner) {
    const int64_t j = e % inner, k = (e / inner) % K, o = e / (inner * K);
    atomicAdd(&out[(o * D + wrap(idx[k], D)) * inner + j], src[e]);
  }
}

// gather: out and index share a shape (contiguous); x strided.
__global__ void gather_kernel(View out, View x, int dim, View index, int64_t n) {
  LOOM_GRID_LOOP(e, n) {
    int64_t rem = e, off = 0;
    const int64_t ix = static_cast<const int64_t*>(index.data)[offset_of(e, index)];
    for (int d = index.nd - 1; d >= 0; --d) {
      const int64_t c = rem % index.size[d];
      rem /= index.size[d];
      off += (d == dim ? wrap(ix, x.size[d]) : c) * x.stride[d];
    }
    store<double>(out.data, offset_of(e, out), out.dt, load<double>(x.data, off, x.dt));
  }
}

template <class T>
__global__ void scatter_kernel(View out, int dim, View index, View src, bool add, int64_t n) {
  LOOM_GRID_LOOP(e, n) {
    int64_t rem = e, off = 0;
    const int64_t ix = static_cast<const int64_t*>(index.data)[offset_of(e, index)];
    for (int d = index.nd - 1; d >= 0; --d) {
      const int64_t c = rem % index.size[d];
      rem /= index.size[d];
      off += (d == dim ? wrap(ix, out.size[d]) : c) * out.stride[d];
    }
    const T v = static_cast<const T*>(src.data)[offset_in(e, index, src)];
    if (add) atomicAdd(&static_cast<T*>(out.data)[off], v);
    else static_cast<T*>(out.data)[off] = v;
  }
}

__global__ void check_index_kernel(const int64_t* idx, int64_t n, int64_t limit, int* bad) {
  LOOM_GRID_LOOP(i, n) {
    if (idx[i] < -limit || idx[i] >= limit) *bad = 1;
  }
}

template <class T>
__global__ void head_kernel(T* packed, T* q, T* k, T* v, int64_t B, int64_t Tn, int64_t H, int64_t D, bool to_heads) {
  const int64_t C = H * D;
  LOOM_GRID_LOOP(e, B * Tn * 3 * C) {
    const int64_t c = e % (3 * C), bt = e / (3 * C), b = bt / Tn, t = bt % Tn;
    const int64_t s = c / C, h = (c % C) / D, d = c % D;
    T* head = (s == 0 ? q : s == 1 ? k : v) + ((b * H + h) * Tn + t) * D + d;
    if (to_heads) *head = packed[e];
    else packed[e] = *head;
  }
}

// ---- attention
constexpr int kMaxHeadDim = 256;
constexpr int kPer = kMaxHeadDim / 32;  // head-dim elements per lane

template <class T>
__device__ __forceinline__ T warp_sum(T v) {
  for (int o = 16; o > 0; o /= 2) v += __shfl_xor_sync(0xffffffffu, v, o);
  return v;
}

// Score of (bh, i, j) given the warp's dot product, or -inf when masked.
template <class T>
__device__ __forceinline__ T masked_score(const AttnArgs& a, T dot, int64_t bh, int64_t i, int64_t j) {
  if (a.causal && j > i) return -INFINITY;
  T sc = dot * T(a.scale);
  if (a.mask) {
    const int64_t mo = a.mask_off[bh] + i * a.mask_si + j * a.mask_sj;
    if (a.mask_dt == DType::boolean) {
      if (!static_cast<const bool*>(a.mask)[mo]) return -INFINITY;
    } else {
      sc += static_cast<const T*>(a.mask)[mo];
    }
  }
  return sc;
}

template <class T>
__global__ void attn_fwd_kernel(AttnArgs a, const T* q, const T* k, const T* v, T* out, T* lse) {
  const int lane = threadIdx.x % 32;
  const int64_t row = (int64_t(blockIdx.x) * blockDim.x + threadIdx.x) / 32;
  if (row >= a.BH * a.Tq) return;
  const int64_t bh = row / a.Tq, i = row % a.Tq;
  const int64_t kb = a.kv_off ? a.kv_off[bh] : bh * a.k_stride, vb = a.kv_off ? a.kv_off[bh] : bh * a.v_stride;
  const int64_t nk = a.nkeys ? a.nkeys[bh] : a.Tk;
  T qr[kPer], acc[kPer];
  for (int p = 0; p < kPer; ++p) {
    const int64_t d = lane + 32 * p;
    qr[p] = d < a.D ? q[row * a.D + d] : T(0);
    acc[p] = T(0);
  }
  T m = -INFINITY, z = 0;
  const int64_t last = a.causal ? (i + 1 < nk ? i + 1 : nk) : nk;
  for (int64_t j = 0; j < last; ++j) {
    const T* kj = k + kb + j * a.D;
    T dot = 0;
    for (int p = 0; p < kPer; ++p) {
      const int64_t d = lane + 32 * p;
      if (d < a.D) dot += qr[p] * kj[d];
    }
    const T sc = masked_score(a, warp_sum(dot), bh, i, j);
    if (sc == -INFINITY) continue;
    const T mn = sc > m ? sc : m, corr = exp(m - mn), pj = exp(sc - mn);
    z = z * corr + pj;
    const T* vj = v + vb + j * a.Dv;
    for (int p = 0; p < kPer; ++p) {
      const int64_t d = lane + 32 * p;
      if (d < a.Dv) acc[p] = acc[p] * corr + pj * vj[d];
    }
    m = mn;
  }
  for (int p = 0; p < kPer; ++p) {
    const int64_t d = lane + 32 * p;
    if (d < a.Dv) out[row * a.Dv + d] = z > T(0) ? acc[p] / z : T(0);
  }
  if (lane == 0) lse[row] = z > T(0) ? m + log(z) : T(-INFINITY);
}

// di[row] = dout_row . out_row
template <class T>
__global__ void attn_di_kernel(AttnArgs a, const T* out, const T* dout, T* di) {
  const int lane = threadIdx.x % 32;
  const int64_t row = (int64_t(blockIdx.x) * blockDim.x + threadIdx.x) / 32;
  if (row >= a.BH * a.Tq) return;
  T s = 0;
  for (int64_t d = lane; d < a.Dv; d += 32) s += dout[row * a.Dv + d] * out[row * a.Dv + d];
  s = warp_sum(s);
  if (lane == 0) di[row] = s;
}

// One warp per query row: dq_i = scale * sum_j ds_ij k_j.
template <class T>
__global__ void attn_dq_kernel(AttnArgs a, const T* q, const T* k, const T* v, const T* lse, const T* dout,
                               const T* di, T* dq) {
  const int lane = threadIdx.x % 32;
  const int64_t row = (int64_t(blockIdx.x) * blockDim.x + threadIdx.x) / 32;
  if (row >= a.BH * a.Tq) return;
  const int64_t bh = row / a.Tq, i = row % a.Tq;
  const T L = lse[row], Di = di[row];
  T qr[kPer], dor[kPer], g[kPer];
  for (int p = 0; p < kPer; ++p) {
    const int64_t d = lane + 32 * p;
    qr[p] = d < a.D ? q[row * a.D + d] : T(0);
    dor[p] = d < a.Dv ? dout[row * a.Dv + d] : T(0);
    g[p] = 0;
  }
  const int64_t last = (a.causal && i + 1 < a.Tk) ? i + 1 : a.Tk;
  for (int64_t j = 0; L != T(-INFINITY) && j < last; ++j) {
    const T* kj = k + (bh * a.Tk + j) * a.D;
    const T* vj = v + (bh * a.Tk + j) * a.Dv;
    T dot = 0, dp = 0;
    for (int p = 0; p < kPer; ++p) {
      const int64_t d = lane + 32 * p;
      if (d < a.D) dot += qr[p] * kj[d];
      if (d < a.Dv) dp += dor[p] * vj[d];
    }
    const T sc = masked_score(a, warp_sum(dot), bh, i, j);
    dp = warp_sum(dp);
    if (sc == -INFINITY) continue;
    const T ds = exp(sc - L) * (dp - Di);
    for (int p = 0; p < kPer; ++p) {
      const int64_t d = lane + 32 * p;
      if (d < a.D) g[p] += ds * kj[d];
    }
  }
  for (int p = 0; p < kPer; ++p) {
    const int64_t d = lane + 32 * p;
    if (d < a.D) dq[row * a.D + d] = g[p] * T(a.scale);
  }
}

// One warp per key row: dk_j = scale * sum_i ds_ij q_i, dv_j = sum_i p_ij dout_i.
template <class T>
__global__ void attn_dkv_kernel(AttnArgs a, const T* q, const T* k, const T* v, const T* lse, const T* dout,
                                const T* di, T* dk, T* dv) {
  const int lane = threadIdx.x % 32;
  const int64_t krow = (int64_t(blockIdx.x) * blockDim.x + threadIdx.x) / 32;
  if (krow >= a.BH * a.Tk) return;
  const int64_t bh = krow / a.Tk, j = krow % a.Tk;
  T kr[kPer], vr[kPer], gk[kPer], gv[kPer];
  for (int p = 0; p < kPer; ++p) {
    const int64_t d = lane + 32 * p;
    kr[p] = d < a.D ? k[krow * a.D + d] : T(0);
    vr[p] = d < a.Dv ? v[krow * a.Dv + d] : T(0);
    gk[p] = gv[p] = 0;
  }
  for (int64_t i = a.causal ? j : 0; i < a.Tq; ++i) {
    const int64_t row = bh * a.Tq + i;
    const T L = lse[row];
    if (L == T(-INFINITY)) continue;
    const T* qi = q + row * a.D;
    const T* doi = dout + row * a.Dv;
    T dot = 0, dp = 0;
    for (int p = 0; p < kPer; ++p) {
      const int64_t d = lane + 32 * p;
      if (d < a.D) dot += kr[p] * qi[d];
      if (d < a.Dv) dp += vr[p] * doi[d];
    }
    const T sc = masked_score(a, warp_sum(dot), bh, i, j);
    dp = warp_sum(dp);
    if (sc == -INFINITY) continue;
    const T pij = exp(sc - L), ds = pij * (dp - di[row]);
    for (int p = 0; p < kPer; ++p) {
      const int64_t d = lane + 32 * p;
      if (d < a.D) gk[p] += ds * qi[d];
      if (d < a.Dv) gv[p] += pij * doi[d];
    }
  }
  for (int p = 0; p < kPer; ++p) {
    const int64_t d = lane + 32 * p;
    if (d < a.D) dk[krow * a.D + d] = gk[p] * T(a.scale);
    if (d < a.Dv) dv[krow * a.Dv + d] = gv[p];
  }
}

// ---- convolution pieces
template <class T>
__global__ void im2col_kernel(const T* x, ConvArgs g, T* cols) {
  const int64_t L = g.OH * g.OW, n = g.C * g.KH * g.KW * L;
  LOOM_GRID_LOOP(e, n) {
    const int64_t l = e % L, r = e / L;
    const int64_t kw = r % g.KW, kh = (r / g.KW) % g.KH, c = r / (g.KW * g.KH);
    const int64_t oh = l / g.OW, ow = l % g.OW;
    const int64_t h = oh * g.sh - g.ph + kh * g.dh, w = ow * g.sw - g.pw + kw * g.dw;
    cols[e] = (h >= 0 && h < g.H && w >= 0 && w < g.W) ? x[(c * g.H + h) * g.W + w] : T(0);
  }
}

// Each input pixel sums the column entries that read it (no atomics: a gather over the windows covering it).
template <class T>
__global__ void col2im_kernel(const T* cols, ConvArgs g, T* dx) {
  const int64_t L = g.OH * g.OW;
  LOOM_GRID_LOOP(e, g.C * g.H * g.W) {
    const int64_t w = e % g.W, h = (e / g.W) % g.H, c = e / (g.W * g.H);
    T s = 0;
    for (int64_t kh = 0; kh < g.KH; ++kh) {
      const int64_t th = h + g.ph - kh * g.dh;
      if (th < 0 || th % g.sh) continue;
      const int64_t oh = th / g.sh;
      if (oh >= g.OH) continue;
      for (int64_t kw = 0; kw < g.KW; ++kw) {
        const int64_t tw = w + g.pw - kw * g.dw;
        if (tw < 0 || tw % g.sw) continue;
        const int64_t ow = tw / g.sw;
        if (ow >= g.OW) continue;
        s += cols[((c * g.KH + kh) * g.KW + kw) * L + oh * g.OW + ow];
      }
    }
    dx[e] = s;
  }
}

template <class T>
__global__ void bias_kernel(T* out, const T* bias, int64_t N, int64_t OC, int64_t S) {
  LOOM_GRID_LOOP(e, N * OC * S) { out[e] += bias[(e / S) % OC]; }
}

template <class T>
__global__ void channel_sum_kernel(const T* g, int64_t N, int64_t OC, int64_t S, T* db) {
  LOOM_GRID_LOOP(c, OC) {
    double s = 0;
    for (int64_t n = 0; n < N; ++n)
      for (int64_t i = 0; i < S; ++i) s += double(g[(n * OC + c) * S + i]);
    db[c] = T(s);
  }
}

template <class T>
__global__ void max_pool_kernel(const T* x, PoolArgs g, T* out, int64_t* ind) {
  LOOM_GRID_LOOP(e, g.N * g.C * g.OH * g.OW) {
    const int64_t ow = e % g.OW, oh = (e / g.OW) % g.OH, nc = e / (g.OW * g.OH);
    const T* plane = x + nc * g.H * g.W;
    T best = -INFINITY;
    int64_t bi = -1;
    for (int64_t kh = 0; kh < g.KH; ++kh) {
      const int64_t h = oh * g.sh - g.ph + kh * g.dh;
      if (h < 0 || h >= g.H) continue;
      for (int64_t kw = 0; kw < g.KW; ++kw) {
        const int64_t w = ow * g.sw - g.pw + kw * g.dw;
        if (w < 0 || w >= g.W) continue;
        const T v = plane[h * g.W + w];
        if (bi < 0 || v > best || v != v) best = v, bi = h * g.W + w;
        if (v != v) break;
      }
    }
    out[e] = best;
    ind[e] = bi;
  }
}

template <class T>
__global__ void max_pool_bwd_kernel(const T* gout, const int64_t* ind, PoolArgs g, T* dx) {
  LOOM_GRID_LOOP(e, g.N * g.C * g.OH * g.OW) {
    const int64_t nc = e / (g.OW * g.OH);
    if (ind[e] >= 0) atomicAdd(&dx[nc * g.H * g.W + ind[e]], gout[e]);
  }
}

template <class F>
void by_float(DType dt, F f) {
  if (dt == DType::f64) f(double());
  else f(float());
}

}  // namespace

void optimizer_update(DType dt, const OptimArgs& o, void* p, const void* g, void* s0, void* s1, void* s2, int64_t n) {
  if (n == 0) return;
  by_float(dt, [&](auto z) {
    using T = decltype(z);
    optim_kernel<T><<<blocks_for(n), 256, 0, stream()>>>(o, static_cast<T*>(p), static_cast<const T*>(g),
                                                          static_cast<T*>(s0), static_cast<T*>(s1),
                                                          static_cast<T*>(s2), n);
  });
  check_launch("optimizer_update");
}

void index_select(const View& out, const View& x, int dim, const int64_t* index, int64_t n) {
  const ODI a = odi(x, dim);
  const int64_t total = a.outer * n * a.inner;
  if (total == 0) return;
  switch (itemsize(x.dt)) {
    case 1: index_select_kernel<uint8_t><<<blocks_for(total), 256, 0, stream()>>>(static_cast<const uint8_t*>(x.data), static_cast<uint8_t*>(out.data), index, a.outer, a.D, n, a.inner); break;
    case 2: index_select_kernel<uint16_t><<<blocks_for(total), 256, 0, stream()>>>(static_cast<const uint16_t*>(x.data), static_cast<uint16_t*>(out.data), index, a.outer, a.D, n, a.inner); break;
    case 4: index_select_kernel<uint32_t><<<blocks_for(total), 256, 0, stream()>>>(static_cast<const uint32_t*>(x.data), static_cast<uint32_t*>(out.data), index, a.outer, a.D, n, a.inner); break;
    default: index_select_kernel<uint64_t><<<blocks_for(total), 256, 0, stream()>>>(static_cast<const uint64_t*>(x.data), static_cast<uint64_t*>(out.data), index, a.outer, a.D, n, a.inner); break;
  }
  check_launch("index_select");
}

void index_add(const View& out, int dim, const int64_t* index, int64_t n, const View& src) {
  const ODI a = odi(out, dim);
  const int64_t total = a.outer * n * a.inner;
  if (total == 0) return;
  by_float(out.dt, [&](auto z) {
    using T = decltype(z);
    index_add_kernel<T><<<blocks_for(total), 256, 0, stream()>>>(static_cast<T*>(out.data), static_cast<const T*>(src.data),
                                                                  index, a.outer, a.D, n, a.inner);
  });
  check_launch("index_add");
}

void gather(const View& out, const View& x, int dim, const View& index) {
  const int64_t n = index.numel();
  if (n == 0) return;
  gather_kernel<<<blocks_for(n), 256, 0, stream()>>>(out, x, dim, index, n);
  check_launch("gather");
}

void scatter(const View& out, int dim, const View& index, const View& src, bool add) {
  const int64_t n = index.numel();
  if (n == 0) return;
  by_float(out.dt, [&](auto z) {
    using T = decltype(z);
    scatter_kernel<T><<<blocks_for(n), 256, 0, stream()>>>(out, dim, index, src, add, n);
  });
  check_launch("scatter");
}

void check_index(const int64_t* index, int64_t n, int64_t limit, int* bad) {
  if (n == 0) return;
  check_index_kernel<<<blocks_for(n), 256, 0, stream()>>>(index, n, limit, bad);
  check_launch("check_index");
}

void head_copy(DType dt, void* packed, void* q, void* k, void* v, int64_t B, int64_t T_, int64_t H, int64_t D,
               bool to_heads) {
  const int64_t n = B * T_ * 3 * H * D;
  if (n == 0) return;
  by_float(dt, [&](auto z) {
    using T = decltype(z);
    head_kernel<T><<<blocks_for(n), 256, 0, stream()>>>(static_cast<T*>(packed), static_cast<T*>(q), static_cast<T*>(k),
                                                         static_cast<T*>(v), B, T_, H, D, to_heads);
  });
  check_launch("head_copy");
}

static void check_head_dims(const AttnArgs& a) {
  if (a.D > kMaxHeadDim || a.Dv > kMaxHeadDim)
    LOOM_FAIL("attention on CUDA supports head sizes up to ", kMaxHeadDim, ", got ", (a.D > a.Dv ? a.D : a.Dv),
              " (a tiled kernel for larger heads is not written yet)");
}

static int warp_blocks(int64_t rows) { return int((rows * 32 + 255) / 256); }

void attention_forward(const AttnArgs& a, const void* q, const void* k, const void* v, void* out, void* lse) {
  check_head_dims(a);
  const int64_t rows = a.BH * a.Tq;
  if (rows == 0) return;
  by_float(a.dt, [&](auto z) {
    using T = decltype(z);
    attn_fwd_kernel<T><<<warp_blocks(rows), 256, 0, stream()>>>(a, static_cast<const T*>(q), static_cast<const T*>(k),
                                                                 static_cast<const T*>(v), static_cast<T*>(out),
                                                                 static_cast<T*>(lse));
  });
  check_launch("attention_forward");
}

void attention_backward(const AttnArgs& a, const void* q, const void* k, const void* v, const void* out,
                        const void* lse, const void* dout, void* dq, void* dk, void* dv, void* scratch) {
  check_head_dims(a);
  const int64_t rows = a.BH * a.Tq, krows = a.BH * a.Tk;
  by_float(a.dt, [&](auto z) {
    using T = decltype(z);
    const T *Q = static_cast<const T*>(q), *K = static_cast<const T*>(k), *V = static_cast<const T*>(v);
    const T *L = static_cast<const T*>(lse), *DO = static_cast<const T*>(dout);
    T* di = static_cast<T*>(scratch);
    if (rows > 0) {
      attn_di_kernel<T><<<warp_blocks(rows), 256, 0, stream()>>>(a, static_cast<const T*>(out), DO, di);
      attn_dq_kernel<T><<<warp_blocks(rows), 256, 0, stream()>>>(a, Q, K, V, L, DO, di, static_cast<T*>(dq));
    }
    if (krows > 0)
      attn_dkv_kernel<T><<<warp_blocks(krows), 256, 0, stream()>>>(a, Q, K, V, L, DO, di, static_cast<T*>(dk),
                                                                    static_cast<T*>(dv));
  });
  check_launch("attention_backward");
}

void im2col(DType dt, const void* x, const ConvArgs& g, void* cols) {
  const int64_t n = g.C * g.KH * g.KW * g.OH * g.OW;
  if (n == 0) return;
  by_float(dt, [&](auto z) {
    using T = decltype(z);
    im2col_kernel<T><<<blocks_for(n), 256, 0, stream()>>>(static_cast<const T*>(x), g, static_cast<T*>(cols));
  });
  check_launch("im2col");
}

void col2im(DType dt, const void* cols, const ConvArgs& g, void* dx) {
  const int64_t n = g.C * g.H * g.W;
  if (n == 0) return;
  by_float(dt, [&](auto z) {
    using T = decltype(z);
    col2im_kernel<T><<<blocks_for(n), 256, 0, stream()>>>(static_cast<const T*>(cols), g, static_cast<T*>(dx));
  });
  check_launch("col2im");
}

void add_channel_bias(DType dt, void* out, const void* bias, int64_t N, int64_t OC, int64_t S) {
  if (N * OC * S == 0) return;
  by_float(dt, [&](auto z) {
    using T = decltype(z);
    bias_kernel<T><<<blocks_for(N * OC * S), 256, 0, stream()>>>(static_cast<T*>(out), static_cast<const T*>(bias), N, OC, S);
  });
  check_launch("add_channel_bias");
}

void channel_sum(DType dt, const void* gout, int64_t N, int64_t OC, int64_t S, void* db) {
  if (OC == 0) return;
  by_float(dt, [&](auto z) {
    using T = decltype(z);
    channel_sum_kernel<T><<<blocks_for(OC), 256, 0, stream()>>>(static_cast<const T*>(gout), N, OC, S, static_cast<T*>(db));
  });
  check_launch("channel_sum");
}

void max_pool2d(DType dt, const void* x, const PoolArgs& g, void* out, int64_t* indices) {
  const int64_t n = g.N * g.C * g.OH * g.OW;
  if (n == 0) return;
  by_float(dt, [&](auto z) {
    using T = decltype(z);
    max_pool_kernel<T><<<blocks_for(n), 256, 0, stream()>>>(static_cast<const T*>(x), g, static_cast<T*>(out), indices);
  });
  check_launch("max_pool2d");
}

void max_pool2d_backward(DType dt, const void* gout, const int64_t* indices, const PoolArgs& g, void* dx) {
  const int64_t n = g.N * g.C * g.OH * g.OW;
  cudaMemsetAsync(dx, 0, size_t(g.N * g.C * g.H * g.W) * (dt == DType::f64 ? 8 : 4), stream());
  if (n == 0) return;
  by_float(dt, [&](auto z) {
    using T = decltype(z);
    max_pool_bwd_kernel<T><<<blocks_for(n), 256, 0, stream()>>>(static_cast<const T*>(gout), indices, g, static_cast<T*>(dx));
  });
  check_launch("max_pool2d_backward");
}

}  // namespace loom::cuda::k
