// The strided N-operand loop behind every elementwise CPU kernel.
//   nd_loop<2>(out.shape(), {byte_strides(out), byte_strides(x, out.shape())}, {out_ptr, x_ptr},
//              [](char** p, const int64_t* s, int64_t n) { ... n elements, p[k] += s[k] per step ... });
// Dims are coalesced so contiguous (and many broadcast) operands become one long inner run, which the
// compiler vectorises. Large loops are split across OpenMP threads on the outer index.
#pragma once
#include <array>
#include <cstdint>
#include <utility>
#include <vector>

#include "loom/core/tensor.h"

#ifdef _OPENMP
#include <omp.h>
#endif

namespace loom::cpu {

// Byte strides of `t` aligned to `shape` (broadcast dims get stride 0).
Shape byte_strides(const Tensor& t, const Shape& shape);
inline Shape byte_strides(const Tensor& t) { return byte_strides(t, t.shape()); }

// Below this many elements a loop runs on one thread: thread wake-up costs more than it saves.
constexpr int64_t kParallelGrain = 32768;

template <size_t N>
struct LoopPlan {
  Shape shape;                              // coalesced, innermost last
  std::array<std::vector<int64_t>, N> st;   // byte strides per operand
};

template <size_t N>
LoopPlan<N> plan_loop(const Shape& shape, const std::array<Shape, N>& strides) {
  LoopPlan<N> p;
  // Drop size-1 dims, then merge neighbours that are contiguous with each other for every operand.
  for (size_t d = 0; d < shape.size(); ++d) {
    if (shape[d] == 1) continue;
    if (!p.shape.empty()) {
      bool merge = true;
      for (size_t k = 0; k < N; ++k)
        if (p.st[k].back() != strides[k][d] * shape[d]) { merge = false; break; }
      if (merge) {
        p.shape.back() *= shape[d];
        for (size_t k = 0; k < N; ++k) p.st[k].back() = strides[k][d];
        continue;
      }
    }
    p.shape.push_back(shape[d]);
    for (size_t k = 0; k < N; ++k) p.st[k].push_back(strides[k][d]);
  }
  if (p.shape.empty()) {
    p.shape.push_back(1);
    for (size_t k = 0; k < N; ++k) p.st[k].push_back(0);
  }
  return p;
}

// Inside a parallel region: this thread's static share [n * t / nt, n * (t + 1) / nt) of n work items.
inline std::pair<int64_t, int64_t> thread_share(int64_t n) {
#ifdef _OPENMP
  const int64_t nt = omp_get_num_threads(), t = omp_get_thread_num();
#else
  const int64_t nt = 1, t = 0;
#endif
  return {n * t / nt, n * (t + 1) / nt};
}

// Calls f(begin, end) on one contiguous block of [0, n) per OpenMP thread.
template <class F>
void parallel_blocks(int64_t n, F&& f) {
#pragma omp parallel
  {
#ifdef _OPENMP
    const int nt = omp_get_num_threads(), t = omp_get_thread_num();
#else
    const int nt = 1, t = 0;
#endif
    const int64_t chunk = (n + nt - 1) / nt;
    const int64_t b = std::min<int64_t>(n, t * chunk), e = std::min<int64_t>(n, b + chunk);
    if (b < e) f(b, e);
  }
}

template <size_t N, class F>
void nd_loop(const Shape& shape, const std::array<Shape, N>& strides, std::array<char*, N> base, F&& f) {
  if (loom::numel(shape) == 0) return;
  LoopPlan<N> p = plan_loop<N>(shape, strides);
  const int64_t nd = int64_t(p.shape.size());
  const int64_t inner = p.shape.back();
  int64_t outer = 1;
  for (int64_t d = 0; d + 1 < nd; ++d) outer *= p.shape[d];
  int64_t inner_st[N];
  for (size_t k = 0; k < N; ++k) inner_st[k] = p.st[k].back();

  auto run_range = [&](int64_t o_begin, int64_t o_end, int64_t i_begin, int64_t i_end) {
    // Decompose o_begin into a multi-index over the outer dims once, then step it like an odometer.
    std::vector<int64_t> idx(size_t(nd > 1 ? nd - 1 : 0), 0);
    int64_t rem = o_begin;
    for (int64_t d = nd - 2; d >= 0; --d) { idx[d] = rem % p.shape[d]; rem /= p.shape[d]; }
    for (int64_t o = o_begin; o < o_end; ++o) {
      char* ptr[N];
      for (size_t k = 0; k < N; ++k) {
        int64_t off = 0;
        for (int64_t d = 0; d + 1 < nd; ++d) off += idx[d] * p.st[k][d];
        ptr[k] = base[k] + off + i_begin * inner_st[k];
      }
      f(ptr, inner_st, i_end - i_begin);
      for (int64_t d = nd - 2; d >= 0; --d) {
        if (++idx[d] < p.shape[d]) break;
        idx[d] = 0;
      }
    }
  };

  const int64_t total = outer * inner;
  if (total < kParallelGrain) { run_range(0, outer, 0, inner); return; }
  // One long run is split into chunks of itself; otherwise threads take blocks of outer runs.
  if (outer == 1) parallel_blocks(inner, [&](int64_t b, int64_t e) { run_range(0, 1, b, e); });
  else parallel_blocks(outer, [&](int64_t b, int64_t e) { run_range(b, e, 0, inner); });
}

}  // namespace loom::cpu
