#include "loom/ops/creation.h"

#include <cmath>
#include <numeric>

#include "loom/backend/backend.h"
#include "loom/core/dispatch.h"

namespace loom {

namespace {
Tensor finish(Tensor t, const Options& o) {
  if (o.requires_grad) t.requires_grad_(true);
  return t;
}
Generator& gen_or_default(Generator* g) { return g ? *g : default_generator(); }
}  // namespace

Tensor empty(const Shape& shape, Options o) { return finish(make_tensor(shape, o.dtype, o.device), o); }

Tensor full(const Shape& shape, double value, Options o) {
  Tensor t = make_tensor(shape, o.dtype, o.device);
  backend_for(t).fill(t, value);
  return finish(t, o);
}
Tensor zeros(const Shape& shape, Options o) { return full(shape, 0.0, o); }
Tensor ones(const Shape& shape, Options o) { return full(shape, 1.0, o); }
Tensor empty_like(const Tensor& t) { return make_tensor(t.shape(), t.dtype(), t.device()); }
Tensor zeros_like(const Tensor& t) { return full(t.shape(), 0.0, {.dtype = t.dtype(), .device = t.device()}); }
Tensor ones_like(const Tensor& t) { return full(t.shape(), 1.0, {.dtype = t.dtype(), .device = t.device()}); }
Tensor full_like(const Tensor& t, double v) { return full(t.shape(), v, {.dtype = t.dtype(), .device = t.device()}); }
Tensor scalar_tensor(double v, DType dtype) { return full({}, v, {.dtype = dtype}); }

Tensor arange(int64_t end, Options o) { return arange(int64_t(0), end, int64_t(1), o); }

Tensor arange(int64_t start, int64_t end, int64_t step, Options o) {
  LOOM_CHECK(step != 0, "arange: step must be nonzero");
  const int64_t n = std::max<int64_t>(0, (end - start + step + (step > 0 ? -1 : 1)) / step);
  Tensor t = make_tensor({n}, o.dtype, o.device);
  dispatch_all(o.dtype, "arange", [&]<class T>() {
    T* p = static_cast<T*>(t.raw_data());
    for (int64_t i = 0; i < n; ++i) p[i] = T(start + i * step);
  });
  return finish(t, o);
}

Tensor arange(double start, double end, double step, Options o) {
  LOOM_CHECK(step != 0, "arange: step must be nonzero");
  const int64_t n = std::max<int64_t>(0, int64_t(std::ceil((end - start) / step)));
  Tensor t = make_tensor({n}, o.dtype, o.device);
  dispatch_all(o.dtype, "arange", [&]<class T>() {
    T* p = static_cast<T*>(t.raw_data());
    for (int64_t i = 0; i < n; ++i) p[i] = T(start + double(i) * step);
  });
  return finish(t, o);
}

Tensor linspace(double start, double end, int64_t steps, Options o) {
  LOOM_CHECK(steps >= 0, "linspace: number of steps must be non-negative, got ", steps);
  Tensor t = make_tensor({steps}, o.dtype, o.device);
  dispatch_all(o.dtype, "linspace", [&]<class T>() {
    T* p = static_cast<T*>(t.raw_data());
    const double step = steps > 1 ? (end - start) / double(steps - 1) : 0.0;
    // Fill from both ends, as PyTorch does, so the last value is exactly `end`.
    for (int64_t i = 0; i < steps; ++i)
      p[i] = T(i < steps / 2 ? start + step * double(i) : end - step * double(steps - 1 - i));
  });
  return finish(t, o);
}

Tensor eye(int64_t n, int64_t m, Options o) {
  if (m < 0) m = n;
  Tensor t = zeros({n, m}, {.dtype = o.dtype, .device = o.device});
  dispatch_all(o.dtype, "eye", [&]<class T>() {
    T* p = static_cast<T*>(t.raw_data());
    for (int64_t i = 0; i < std::min(n, m); ++i) p[i * m + i] = T(1);
  });
  return finish(t, o);
}

template <class V>
static Tensor from_values(const std::vector<V>& values, const Shape& shape, Options o) {
  Shape s = shape.empty() ? Shape{int64_t(values.size())} : shape;
  LOOM_CHECK(numel(s) == int64_t(values.size()), "tensor: ", values.size(), " values do not fill shape ", s);
  Tensor t = make_tensor(s, o.dtype, o.device);
  dispatch_storage(o.dtype, [&]<class T>() {
    T* p = static_cast<T*>(t.raw_data());
    for (size_t i = 0; i < values.size(); ++i) {
      if constexpr (std::is_same_v<T, bf16> || std::is_same_v<T, f16>) p[i] = T(float(values[i]));
      else p[i] = T(values[i]);
    }
  });
  return finish(t, o);
}
Tensor tensor(std::initializer_list<double> v, const Shape& s, Options o) { return from_values(std::vector<double>(v), s, o); }
Tensor tensor(const std::vector<double>& v, const Shape& s, Options o) { return from_values(v, s, o); }
Tensor tensor(const std::vector<float>& v, const Shape& s, Options o) { return from_values(v, s, o); }
Tensor tensor(const std::vector<int64_t>& v, const Shape& s, Options o) { return from_values(v, s, o); }

Tensor rand(const Shape& shape, Options o, Generator* gen) {
  Tensor t = make_tensor(shape, o.dtype, o.device);
  backend_for(t).uniform(t, 0.0, 1.0, gen_or_default(gen));
  return finish(t, o);
}

Tensor randn(const Shape& shape, Options o, Generator* gen) {
  Tensor t = make_tensor(shape, o.dtype, o.device);
  backend_for(t).normal(t, 0.0, 1.0, gen_or_default(gen));
  return finish(t, o);
}

Tensor randint(int64_t low, int64_t high, const Shape& shape, Options o, Generator* gen) {
  LOOM_CHECK(high > low, "randint: high (", high, ") must be greater than low (", low, ")");
  Generator& g = gen_or_default(gen);
  Tensor t = make_tensor(shape, o.dtype, o.device);
  const uint64_t range = uint64_t(high - low);
  dispatch_all(o.dtype, "randint", [&]<class T>() {
    T* p = static_cast<T*>(t.raw_data());
    for (int64_t i = 0; i < t.numel(); ++i) p[i] = T(low + int64_t(g.next_u64() % range));
  });
  return finish(t, o);
}

Tensor randperm(int64_t n, Options o, Generator* gen) {
  Generator& g = gen_or_default(gen);
  std::vector<int64_t> v(static_cast<size_t>(n));
  std::iota(v.begin(), v.end(), 0);
  for (int64_t i = n - 1; i > 0; --i) std::swap(v[size_t(i)], v[size_t(g.next_u64() % uint64_t(i + 1))]);  // Fisher-Yates
  return tensor(v, {n}, o);
}

Tensor rand_like(const Tensor& t, Generator* gen) { return rand(t.shape(), {.dtype = t.dtype()}, gen); }
Tensor randn_like(const Tensor& t, Generator* gen) { return randn(t.shape(), {.dtype = t.dtype()}, gen); }

Tensor bernoulli(const Tensor& t, double p, Generator* gen) {
  Generator& g = gen_or_default(gen);
  Tensor out = make_tensor(t.shape(), t.dtype(), t.device());
  dispatch_float(t.dtype(), "bernoulli", [&]<class T>() {
    T* q = static_cast<T*>(out.raw_data());
    for (int64_t i = 0; i < out.numel(); ++i) q[i] = g.next_double() < p ? T(1) : T(0);
  });
  return out;
}

}  // namespace loom
