// Indexing kernels: index_select / index_add along a dim, gather / scatter(_add). Indices are int64 and
// range-checked here, so a bad index is an error naming the op, never an out-of-bounds read.
#include "loom/backend/cpu/cpu_backend.h"
#include "loom/backend/cpu/loop.h"
#include "loom/core/dispatch.h"

namespace loom::cpu {

namespace {
// View (outer, D, inner) of a contiguous tensor around `dim`.
struct ODI {
  int64_t outer = 1, D = 1, inner = 1;
};
ODI odi(const Shape& s, int64_t dim) {
  ODI r;
  for (int64_t d = 0; d < dim; ++d) r.outer *= s[size_t(d)];
  r.D = s.empty() ? 1 : s[size_t(dim)];
  for (size_t d = size_t(dim) + 1; d < s.size(); ++d) r.inner *= s[d];
  return r;
}
void check_index(int64_t i, int64_t D, const char* op) {
  LOOM_CHECK(i >= -D && i < D, op, ": index ", i, " is out of bounds for dimension with size ", D);
}
}  // namespace

void CpuBackend::index_select(Tensor& out, const Tensor& x, int64_t dim, const Tensor& index) {
  LOOM_CHECK(x.is_contiguous() && out.is_contiguous() && index.is_contiguous(), "index_select kernel: contiguous tensors expected");
  const ODI a = odi(x.shape(), dim);
  const int64_t K = index.numel();
  const int64_t* idx = index.data<int64_t>();
  for (int64_t k = 0; k < K; ++k) check_index(idx[k], a.D, "index_select");
  const size_t row = size_t(a.inner) * itemsize(x.dtype());
  const char* px = static_cast<const char*>(x.raw_data());
  char* po = static_cast<char*>(out.raw_data());
#pragma omp parallel for collapse(2) if (a.outer * K * a.inner > kParallelGrain)
  for (int64_t o = 0; o < a.outer; ++o)
    for (int64_t k = 0; k < K; ++k) {
      const int64_t i = idx[k] < 0 ? idx[k] + a.D : idx[k];
      std::memcpy(po + size_t(o * K + k) * row, px + size_t(o * a.D + i) * row, row);
    }
}

void CpuBackend::index_add(Tensor& out, int64_t dim, const Tensor& index, const Tensor& src) {
  LOOM_CHECK(out.is_contiguous() && src.is_contiguous() && index.is_contiguous(), "index_add kernel: contiguous tensors expected");
  const ODI a = odi(out.shape(), dim);
  const int64_t K = index.numel();
  const int64_t* idx = index.data<int64_t>();
  for (int64_t k = 0; k < K; ++k) check_index(idx[k], a.D, "index_add");
  dispatch_float(out.dtype(), "index_add", [&]<class T>() {
    T* po = static_cast<T*>(out.raw_data());
    const T* ps = static_cast<const T*>(src.raw_data());
    // Parallel over (outer, inner) columns: repeated indices then never race.
#pragma omp parallel for if (a.outer * K * a.inner > kParallelGrain)
    for (int64_t o = 0; o < a.outer; ++o)
      for (int64_t k = 0; k < K; ++k) {
        const int64_t i = idx[k] < 0 ? idx[k] + a.D : idx[k];
        T* dst = po + (o * a.D + i) * a.inner;
        const T* s = ps + (o * K + k) * a.inner;
#pragma omp simd
        for (int64_t j = 0; j < a.inner; ++j) dst[j] += s[j];
      }
  });
}

// gather/scatter: out/index share a shape; x indexed along dim by index, other dims by position.
void CpuBackend::gather(Tensor& out, const Tensor& x, int64_t dim, const Tensor& index) {
  LOOM_CHECK(out.is_contiguous() && index.is_contiguous(), "gather kernel: contiguous out/index expected");
  dispatch_all(x.dtype(), "gather", [&]<class T>() {
    const int64_t n = index.numel(), nd = index.dim();
    const int64_t* idx = index.data<int64_t>();
    T* po = static_cast<T*>(out.raw_data());
    const T* px = static_cast<const T*>(x.raw_data());
    const int64_t D = x.shape()[size_t(dim)];
    for (int64_t e = 0; e < n; ++e) {
      int64_t rem = e, off = 0;
      for (int64_t d = nd - 1; d >= 0; --d) {
        const int64_t c = rem % index.shape()[size_t(d)];
        rem /= index.shape()[size_t(d)];
        if (d == dim) {
          check_index(idx[e], D, "gather");
          off += (idx[e] < 0 ? idx[e] + D : idx[e]) * x.strides()[size_t(d)];
        } else {
          off += c * x.strides()[size_t(d)];
        }
      }
      po[e] = px[off];
    }
  });
}

void CpuBackend::scatter(Tensor& out, int64_t dim, const Tensor& index, const Tensor& src, bool add) {
  LOOM_CHECK(out.is_contiguous() && index.is_contiguous(), "scatter kernel: contiguous out/index expected");
  dispatch_all(out.dtype(), "scatter", [&]<class T>() {
    const int64_t n = index.numel(), nd = index.dim();
    const int64_t* idx = index.data<int64_t>();
    T* po = static_cast<T*>(out.raw_data());
    const T* ps = static_cast<const T*>(src.raw_data());
    const int64_t D = out.shape()[size_t(dim)];
    for (int64_t e = 0; e < n; ++e) {
      int64_t rem = e, off = 0, soff = 0;
      for (int64_t d = nd - 1; d >= 0; --d) {
        const int64_t c = rem % index.shape()[size_t(d)];
        rem /= index.shape()[size_t(d)];
        soff += c * src.strides()[size_t(d)];
        if (d == dim) {
          check_index(idx[e], D, "scatter");
          off += (idx[e] < 0 ? idx[e] + D : idx[e]) * out.strides()[size_t(d)];
        } else {
          off += c * out.strides()[size_t(d)];
        }
      }
      if (add) po[off] = T(po[off] + ps[soff]);
      else po[off] = ps[soff];
    }
  });
}

}  // namespace loom::cpu
