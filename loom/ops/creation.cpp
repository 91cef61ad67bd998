#include "loom/ops/creation.h"

#include <cmath>
#include <cstring>
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
  backend_for(t).arange_int(t, start, step);
  return finish(t, o);
}

Tensor arange(double start, double end, double step, Options o) {
  LOOM_CHECK(step != 0, "arange: step must be nonzero");
  const int64_t n = std::max<int64_t>(0, int64_t(std::ceil((end - start) / step)));
  Tensor t = make_tensor({n}, o.dtype, o.device);
  backend_for(t).arange(t, start, step);
  return finish(t, o);
}

Tensor linspace(double start, double end, int64_t steps, Options o) {
  LOOM_CHECK(steps >= 0, "linspace: number of steps must be non-negative, got ", steps);
  Tensor t = make_tensor({steps}, o.dtype, o.device);
  backend_for(t).linspace(t, start, end);
  return finish(t, o);
}

Tensor eye(int64_t n, int64_t m, Options o) {
  if (m < 0) m = n;
  Tensor t = make_tensor({n, m}, o.dtype, o.device);
  backend_for(t).eye(t);
  return finish(t, o);
}

template <class V>
static Tensor from_values(const std::vector<V>& values, const Shape& shape, Options o) {
  Shape s = shape.empty() ? Shape{int64_t(values.size())} : shape;
  LOOM_CHECK(numel(s) == int64_t(values.size()), "tensor: ", values.size(), " values do not fill shape ", s);
  // The values as a host tensor of their own type, then one backend copy converts them to the device and dtype.
  Tensor host = make_tensor(s, dtype_of<V>::value);
  if (!values.empty()) std::memcpy(host.raw_data(), values.data(), values.size() * sizeof(V));
  Tensor t = make_tensor(s, o.dtype, o.device);
  backend_for(t).copy(t, host);
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
  backend_for(t).randint(t, low, high, g);
  return finish(t, o);
}

Tensor randperm(int64_t n, Options o, Generator* gen) {
  Generator& g = gen_or_default(gen);
  std::vector<int64_t> v(static_cast<size_t>(n));
  std::iota(v.begin(), v.end(), 0);
  for (int64_t i = n - 1; i > 0; --i) std::swap(v[size_t(i)], v[size_t(g.next_u64() % uint64_t(i + 1))]);  // Fisher-Yates
  return tensor(v, {n}, o);
}

Tensor rand_like(const Tensor& t, Generator* gen) { return rand(t.shape(), {.dtype = t.dtype(), .device = t.device()}, gen); }
Tensor randn_like(const Tensor& t, Generator* gen) { return randn(t.shape(), {.dtype = t.dtype(), .device = t.device()}, gen); }

Tensor bernoulli(const Tensor& t, double p, Generator* gen) {
  Generator& g = gen_or_default(gen);
  Tensor out = make_tensor(t.shape(), t.dtype(), t.device());
  backend_for(out).bernoulli(out, p, g);
  return out;
}

}  // namespace loom
