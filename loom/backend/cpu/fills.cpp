// Deterministic and random fills behind Backend::arange / linspace / eye / randint / bernoulli. Random values
// are drawn sequentially from one generator (like uniform/normal in random.cpp), so a seed gives the same
// tensor whatever the thread count.
#include <algorithm>

#include "loom/backend/cpu/cpu_backend.h"
#include "loom/core/dispatch.h"
#include "loom/core/generator.h"

namespace loom::cpu {

void CpuBackend::arange(Tensor& out, double start, double step) {
  const int64_t n = out.numel();
  dispatch_all(out.dtype(), "arange", [&]<class T>() {
    T* p = static_cast<T*>(out.raw_data());
    for (int64_t i = 0; i < n; ++i) p[i] = T(start + double(i) * step);
  });
}

void CpuBackend::arange_int(Tensor& out, int64_t start, int64_t step) {
  const int64_t n = out.numel();
  dispatch_all(out.dtype(), "arange", [&]<class T>() {
    T* p = static_cast<T*>(out.raw_data());
    for (int64_t i = 0; i < n; ++i) p[i] = T(start + i * step);
  });
}

void CpuBackend::linspace(Tensor& out, double start, double end) {
  const int64_t steps = out.numel();
  dispatch_all(out.dtype(), "linspace", [&]<class T>() {
    T* p = static_cast<T*>(out.raw_data());
    const double step = steps > 1 ? (end - start) / double(steps - 1) : 0.0;
    // Fill from both ends, as PyTorch does, so the last value is exactly `end`.
    for (int64_t i = 0; i < steps; ++i)
      p[i] = T(i < steps / 2 ? start + step * double(i) : end - step * double(steps - 1 - i));
  });
}

void CpuBackend::eye(Tensor& out) {
  const int64_t n = out.size(0), m = out.size(1);
  fill(out, 0.0);
  dispatch_all(out.dtype(), "eye", [&]<class T>() {
    T* p = static_cast<T*>(out.raw_data());
    for (int64_t i = 0; i < std::min(n, m); ++i) p[i * m + i] = T(1);
  });
}

void CpuBackend::randint(Tensor& out, int64_t low, int64_t high, Generator& gen) {
  const uint64_t range = uint64_t(high - low);
  dispatch_all(out.dtype(), "randint", [&]<class T>() {
    T* p = static_cast<T*>(out.raw_data());
    for (int64_t i = 0; i < out.numel(); ++i) p[i] = T(low + int64_t(gen.next_u64() % range));
  });
}

void CpuBackend::bernoulli(Tensor& out, double p, Generator& gen) {
  dispatch_float(out.dtype(), "bernoulli", [&]<class T>() {
    T* q = static_cast<T*>(out.raw_data());
    for (int64_t i = 0; i < out.numel(); ++i) q[i] = gen.next_double() < p ? T(1) : T(0);
  });
}

}  // namespace loom::cpu
