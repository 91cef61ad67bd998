// Reductions (sum/mean/prod/max/min over dims), arg-max/min along a dim, and fused softmax.
// Two layouts cover all cases without copies: "inner" when the input's last dim is reduced (each output
// scans its own run) and "outer" when it is kept (rows of outputs accumulate whole input rows, which
// vectorises across the kept dim). f32 sums accumulate in double for accuracy on long reductions.
#include <algorithm>
#include <vector>
#include <cmath>
#include <limits>

#include "loom/backend/cpu/cpu_backend.h"
#include "loom/backend/cpu/loop.h"
#include "loom/backend/cpu/vec_math.h"
#include "loom/core/dispatch.h"

namespace loom::cpu {

namespace {

struct Split {
  Shape kshape, kstride, rshape, rstride;  // kept and reduced dims, with x's element strides
};

Split split_dims(const Tensor& x, const Shape& dims) {
  Split s;
  std::vector<bool> red(size_t(x.dim()), false);
  for (auto d : dims) red[size_t(d)] = true;
  for (int64_t d = 0; d < x.dim(); ++d) {
    if (red[size_t(d)]) { s.rshape.push_back(x.shape()[d]); s.rstride.push_back(x.strides()[d]); }
    else { s.kshape.push_back(x.shape()[d]); s.kstride.push_back(x.strides()[d]); }
  }
  return s;
}

// Offset (elements) of linear index i within a shape with given strides.
inline int64_t offset_of(int64_t i, const Shape& shape, const Shape& stride) {
  int64_t off = 0;
  for (int64_t d = int64_t(shape.size()) - 1; d >= 0; --d) {
    off += (i % shape[d]) * stride[d];
    i /= shape[d];
  }
  return off;
}

template <class T, class Acc>
struct Reducer {
  ReduceOp op;
  Acc init() const {
    switch (op) {
      case ReduceOp::Prod: return Acc(1);
      case ReduceOp::Max: return -std::numeric_limits<Acc>::infinity();
      case ReduceOp::Min: return std::numeric_limits<Acc>::infinity();
      default: return Acc(0);
    }
  }
};

template <class T>
void reduce_typed(ReduceOp op, Tensor& out, const Tensor& x, const Shape& dims) {
  using Acc = std::conditional_t<std::is_floating_point_v<T>, double, int64_t>;
  Split s = split_dims(x, dims);
  const int64_t O = numel(s.kshape), R = numel(s.rshape);
  const T* px = static_cast<const T*>(x.raw_data());
  T* po = static_cast<T*>(out.raw_data());  // out is contiguous, keepdim shape == kept order
  const bool is_float = std::is_floating_point_v<T>;
  auto combine = [op](Acc a, Acc v) -> Acc {
    switch (op) {
      case ReduceOp::Prod: return a * v;
      case ReduceOp::Max: return (v != v || v > a) ? v : a;
      case ReduceOp::Min: return (v != v || v < a) ? v : a;
      default: return a + v;
    }
  };
  Acc init = Reducer<T, Acc>{op}.init();
  if constexpr (!std::is_floating_point_v<T>) {
    if (op == ReduceOp::Max) init = std::numeric_limits<Acc>::min();
    if (op == ReduceOp::Min) init = std::numeric_limits<Acc>::max();
  }
  auto finish = [&](Acc a) -> T {
    if (op == ReduceOp::Mean) return T(double(a) / double(R));
    return T(a);
  };
  (void)is_float;
  const bool last_reduced = x.dim() > 0 && !s.rshape.empty() &&
                            (s.kshape.empty() || std::find(dims.begin(), dims.end(), x.dim() - 1) != dims.end());
  if (last_reduced || s.kshape.empty()) {
    // Inner mode: each output scans its reduced run. A contiguous last run is summed in a plain loop.
    const int64_t rl = s.rshape.back(), rls = s.rstride.back();
    Shape rshape_outer(s.rshape.begin(), s.rshape.end() - 1), rstride_outer(s.rstride.begin(), s.rstride.end() - 1);
    const int64_t Ro = R / std::max<int64_t>(rl, 1);
    if constexpr (std::is_floating_point_v<T>) {
      // One long contiguous sum (a whole tensor's, e.g. the load-time finiteness check over a GPT-2's weights):
      // the loop below would run it on one thread. Fixed 64K-element pieces summed in piece order give the same
      // result on any thread count.
      if (O == 1 && Ro == 1 && rls == 1 && rl >= 4 * kParallelGrain && (op == ReduceOp::Sum || op == ReduceOp::Mean)) {
        constexpr int64_t kPiece = int64_t(1) << 16;
        const int64_t pieces = (rl + kPiece - 1) / kPiece;
        std::vector<Acc> part(size_t(pieces), Acc(0));
        const T* run = px;  // one output: its run starts at x's first element
#pragma omp parallel for schedule(static)
        for (int64_t p = 0; p < pieces; ++p) {
          const int64_t lo = p * kPiece, hi = std::min(rl, lo + kPiece);
          Acc acc = 0;
#pragma omp simd reduction(+ : acc)
          for (int64_t i = lo; i < hi; ++i) acc += Acc(run[i]);
          part[size_t(p)] = acc;
        }
        Acc acc = 0;
        for (Acc v : part) acc += v;
        po[0] = finish(acc);
        return;
      }
    }
#pragma omp parallel for schedule(static) if (O * R > kParallelGrain && O > 1)
    for (int64_t o = 0; o < O; ++o) {
      const T* base = px + offset_of(o, s.kshape, s.kstride);
      Acc acc = init;
      for (int64_t ro = 0; ro < Ro; ++ro) {
        const T* run = base + offset_of(ro, rshape_outer, rstride_outer);
        if (op == ReduceOp::Sum || op == ReduceOp::Mean) {
          Acc part = 0;
          if (rls == 1) {
#pragma omp simd reduction(+ : part)
            for (int64_t i = 0; i < rl; ++i) part += Acc(run[i]);
          } else {
            for (int64_t i = 0; i < rl; ++i) part += Acc(run[i * rls]);
          }
          acc += part;
        } else {
          for (int64_t i = 0; i < rl; ++i) acc = combine(acc, Acc(run[i * rls]));
        }
      }
      po[o] = finish(acc);
    }
    return;
  }
  // Outer mode: the last kept dim is the vector dim; each row of outputs accumulates over R.
  const int64_t L = s.kshape.back(), Ls = s.kstride.back();
  Shape krows(s.kshape.begin(), s.kshape.end() - 1), krow_st(s.kstride.begin(), s.kstride.end() - 1);
  const int64_t rows = O / std::max<int64_t>(L, 1);
  if constexpr (std::is_floating_point_v<T>) {
    // One row of outputs over many reduced rows (a Linear's bias gradient, sum(dY, {0}) over 2048 tokens): the
    // loop below would run it on one thread (~2% of a W3 step, the other thread waiting). Fixed pieces of
    // kRowPiece reduced rows, added in piece order, give the same result on any thread count.
    constexpr int64_t kRowPiece = 128;
    if (rows == 1 && R >= 2 * kRowPiece && O * R > kParallelGrain && (op == ReduceOp::Sum || op == ReduceOp::Mean)) {
      const int64_t pieces = (R + kRowPiece - 1) / kRowPiece;
      std::vector<Acc> part(size_t(pieces * L), Acc(0));
#pragma omp parallel for schedule(static)
      for (int64_t p = 0; p < pieces; ++p) {
        Acc* a = part.data() + p * L;
        for (int64_t r = p * kRowPiece; r < std::min(R, (p + 1) * kRowPiece); ++r) {
          const T* row = px + offset_of(r, s.rshape, s.rstride);
          if (Ls == 1) {
#pragma omp simd
            for (int64_t j = 0; j < L; ++j) a[j] += Acc(row[j]);
          } else {
            for (int64_t j = 0; j < L; ++j) a[j] += Acc(row[j * Ls]);
          }
        }
      }
      for (int64_t j = 0; j < L; ++j) {
        Acc acc = 0;
        for (int64_t p = 0; p < pieces; ++p) acc += part[size_t(p * L + j)];
        po[j] = finish(acc);
      }
      return;
    }
  }
#pragma omp parallel for schedule(static) if (O * R > kParallelGrain && rows > 1)
  for (int64_t r0 = 0; r0 < rows; ++r0) {
    const T* base = px + offset_of(r0, krows, krow_st);
    std::vector<Acc> acc(size_t(L), init);
    for (int64_t r = 0; r < R; ++r) {
      const T* row = base + offset_of(r, s.rshape, s.rstride);
      if (op == ReduceOp::Sum || op == ReduceOp::Mean) {
        Acc* a = acc.data();
        if (Ls == 1) {
#pragma omp simd
          for (int64_t j = 0; j < L; ++j) a[j] += Acc(row[j]);
        } else {
          for (int64_t j = 0; j < L; ++j) a[j] += Acc(row[j * Ls]);
        }
      } else {
        for (int64_t j = 0; j < L; ++j) acc[size_t(j)] = combine(acc[size_t(j)], Acc(row[j * Ls]));
      }
    }
    for (int64_t j = 0; j < L; ++j) po[r0 * L + j] = finish(acc[size_t(j)]);
  }
}

}  // namespace

void CpuBackend::reduce(ReduceOp op, Tensor& out, const Tensor& x, const Shape& dims) {
  LOOM_CHECK(out.is_contiguous(), "reduce kernel: out must be contiguous");
  if (x.dtype() == DType::boolean) LOOM_FAIL("reduce: bool tensors must be converted first (.to(DType::i64))");
  dispatch_all(x.dtype(), "reduce", [&]<class T>() {
    if constexpr (std::is_same_v<T, bool>) return;
    else reduce_typed<T>(op, out, x, dims);
  });
}

void CpuBackend::arg_reduce(bool is_max, Tensor& values, Tensor& indices, const Tensor& x, int64_t dim) {
  dispatch_all(x.dtype(), "max/min", [&]<class T>() {
    if constexpr (std::is_same_v<T, bool>) LOOM_FAIL("max/min: bool tensors must be converted first");
    else {
      Split s = split_dims(x, {dim});
      const int64_t O = numel(s.kshape), D = x.shape()[size_t(dim)], ds = x.strides()[size_t(dim)];
      const T* px = static_cast<const T*>(x.raw_data());
      T* pv = values.defined() ? static_cast<T*>(values.raw_data()) : nullptr;
      int64_t* pi = static_cast<int64_t*>(indices.raw_data());
#pragma omp parallel for schedule(static) if (O * D > kParallelGrain)
      for (int64_t o = 0; o < O; ++o) {
        const T* run = px + offset_of(o, s.kshape, s.kstride);
        T best = run[0];
        int64_t bi = 0;
        for (int64_t i = 1; i < D; ++i) {
          T v = run[i * ds];
          if constexpr (std::is_floating_point_v<T>) {
            if (best != best) break;  // a NaN wins, first one kept
            if (v != v) { best = v; bi = i; break; }
          }
          if (is_max ? v > best : v < best) { best = v; bi = i; }
        }
        if (pv) pv[o] = best;
        pi[o] = bi;
      }
    }
  });
}

// Max of a contiguous row in 16 independent lanes: `omp simd reduction(max)` over std::max stayed a scalar
// vmaxss chain (4-cycle latency per element, half of softmax's time). NaNs are skipped here and reach the
// result through exp(NaN - max) instead.
constexpr int64_t kBlock = 512;  // softmax row block summed in float lanes before a double add

template <class T>
static inline T row_max(const T* a, int64_t D) {
  constexpr int L = 16;
  T m[L];
  for (int j = 0; j < L; ++j) m[j] = -std::numeric_limits<T>::infinity();
  int64_t k = 0;
  for (; k + L <= D; k += L)
    for (int j = 0; j < L; ++j) m[j] = a[k + j] > m[j] ? a[k + j] : m[j];
  for (; k < D; ++k) m[0] = a[k] > m[0] ? a[k] : m[0];
  T mx = m[0];
  for (int j = 1; j < L; ++j) mx = m[j] > mx ? m[j] : mx;
  return mx;
}

void CpuBackend::softmax(Tensor& out, const Tensor& x, int64_t dim, bool log) {
  dispatch_float(x.dtype(), "softmax", [&]<class T>() {
    const int64_t D = x.shape()[size_t(dim)];
    int64_t outer = 1, inner = 1;
    for (int64_t d = 0; d < dim; ++d) outer *= x.shape()[size_t(d)];
    for (int64_t d = dim + 1; d < x.dim(); ++d) inner *= x.shape()[size_t(d)];
    LOOM_CHECK(x.is_contiguous() && out.is_contiguous(), "softmax kernel: contiguous tensors expected");
    const T* px = static_cast<const T*>(x.raw_data());
    T* po = static_cast<T*>(out.raw_data());
    if (inner == 1) {
      // Contiguous rows (the common case: softmax over the last dim): vectorised max, exp and sum.
#pragma omp parallel for schedule(static) if (outer * D > kParallelGrain)
      for (int64_t o = 0; o < outer; ++o) {
        const T* a = px + o * D;
        T* r = po + o * D;
        T mx = row_max(a, D);
        if (mx == -std::numeric_limits<T>::infinity()) mx = 0;
        // Vector partial sums per block of kBlock, added in double: a 50257-wide row summed in float
        // lanes alone drifted by 1e-5 relative.
        double sum = 0;
        for (int64_t k0 = 0; k0 < D; k0 += kBlock) {
          const int64_t k1 = std::min(D, k0 + kBlock);
          T part = 0;
          if (log) {
#pragma omp simd reduction(+ : part)
            for (int64_t k = k0; k < k1; ++k) part += vexp(a[k] - mx);
          } else {
#pragma omp simd reduction(+ : part)
            for (int64_t k = k0; k < k1; ++k) {
              r[k] = vexp(a[k] - mx);
              part += r[k];
            }
          }
          sum += double(part);
        }
        if (log) {
          const T lse = T(std::log(sum)) + mx;
#pragma omp simd
          for (int64_t k = 0; k < D; ++k) r[k] = a[k] - lse;
        } else {
          const T inv = T(1.0 / sum);
#pragma omp simd
          for (int64_t k = 0; k < D; ++k) r[k] *= inv;
        }
      }
      return;
    }
#pragma omp parallel for schedule(static) if (outer * inner * D > kParallelGrain)
    for (int64_t oi = 0; oi < outer * inner; ++oi) {
      const int64_t o = oi / inner, i = oi % inner;
      const T* a = px + o * D * inner + i;
      T* r = po + o * D * inner + i;
      T mx = -std::numeric_limits<T>::infinity();
      for (int64_t k = 0; k < D; ++k) mx = std::max(mx, a[k * inner]);
      if (mx == -std::numeric_limits<T>::infinity()) mx = 0;  // all -inf row: avoid inf - inf
      double sum = 0;
      if (log) {
        for (int64_t k = 0; k < D; ++k) sum += vexp(a[k * inner] - mx);
        const T lse = T(std::log(sum)) + mx;
        for (int64_t k = 0; k < D; ++k) r[k * inner] = a[k * inner] - lse;
      } else {
        for (int64_t k = 0; k < D; ++k) { T e = vexp(a[k * inner] - mx); r[k * inner] = e; sum += e; }
        const T inv = T(1.0 / sum);
        for (int64_t k = 0; k < D; ++k) r[k * inner] *= inv;
      }
    }
  });
}

void CpuBackend::softmax_backward(Tensor& dx, const Tensor& g, const Tensor& y, int64_t dim, bool log) {
  dispatch_float(y.dtype(), "softmax_backward", [&]<class T>() {
    const int64_t D = y.shape()[size_t(dim)];
    int64_t outer = 1, inner = 1;
    for (int64_t d = 0; d < dim; ++d) outer *= y.shape()[size_t(d)];
    for (int64_t d = dim + 1; d < y.dim(); ++d) inner *= y.shape()[size_t(d)];
    LOOM_CHECK(g.is_contiguous() && y.is_contiguous() && dx.is_contiguous(), "softmax_backward: contiguous tensors expected");
    const T* pg = static_cast<const T*>(g.raw_data());
    const T* py = static_cast<const T*>(y.raw_data());
    T* pd = static_cast<T*>(dx.raw_data());
    if (inner == 1) {
      // Contiguous rows: vectorised dot product and update (the attention and cross-entropy case).
#pragma omp parallel for schedule(static) if (outer * D > kParallelGrain)
      for (int64_t o = 0; o < outer; ++o) {
        const T* gr = pg + o * D;
        const T* yr = py + o * D;
        T* dr = pd + o * D;
        double acc_d = 0;
        for (int64_t k0 = 0; k0 < D; k0 += kBlock) {
          const int64_t k1 = std::min(D, k0 + kBlock);
          T part = 0;
          if (log) {
#pragma omp simd reduction(+ : part)
            for (int64_t k = k0; k < k1; ++k) part += gr[k];
          } else {
#pragma omp simd reduction(+ : part)
            for (int64_t k = k0; k < k1; ++k) part += gr[k] * yr[k];
          }
          acc_d += double(part);
        }
        const T acc = T(acc_d);
        if (log) {
#pragma omp simd
          for (int64_t k = 0; k < D; ++k) dr[k] = gr[k] - vexp(yr[k]) * acc;
        } else {
#pragma omp simd
          for (int64_t k = 0; k < D; ++k) dr[k] = yr[k] * (gr[k] - acc);
        }
      }
      return;
    }
#pragma omp parallel for schedule(static) if (outer * inner * D > kParallelGrain)
    for (int64_t oi = 0; oi < outer * inner; ++oi) {
      const int64_t base = (oi / inner) * D * inner + oi % inner;
      double acc = 0;
      if (log) {
        for (int64_t k = 0; k < D; ++k) acc += pg[base + k * inner];
        for (int64_t k = 0; k < D; ++k) pd[base + k * inner] = pg[base + k * inner] - std::exp(py[base + k * inner]) * T(acc);
      } else {
        for (int64_t k = 0; k < D; ++k) acc += double(pg[base + k * inner]) * py[base + k * inner];
        for (int64_t k = 0; k < D; ++k) pd[base + k * inner] = py[base + k * inner] * (pg[base + k * inner] - T(acc));
      }
    }
  });
}

}  // namespace loom::cpu
