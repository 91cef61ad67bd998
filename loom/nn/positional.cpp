// Positional tables and rotary embeddings. Tables are computed in double and converted, so f32 tables
// match PyTorch's formula evaluated in double to rounding.
#include "loom/nn/positional.h"

#include <cmath>

#include "loom/nn/init.h"
#include "loom/ops/creation.h"
#include "loom/ops/elementwise.h"
#include "loom/ops/shape.h"

namespace loom {

Tensor sinusoidal_positions(int64_t max_len, int64_t dim, double base, DType dtype) {
  LOOM_CHECK(max_len >= 0 && dim > 0 && dim % 2 == 0, "sinusoidal_positions: need max_len >= 0 and an even dim > 0, got ",
             max_len, " and ", dim);
  std::vector<double> v(size_t(max_len * dim));
  for (int64_t p = 0; p < max_len; ++p)
    for (int64_t i = 0; i < dim / 2; ++i) {
      const double a = double(p) * std::pow(base, -2.0 * double(i) / double(dim));
      v[size_t(p * dim + 2 * i)] = std::sin(a);
      v[size_t(p * dim + 2 * i + 1)] = std::cos(a);
    }
  return tensor(v, {max_len, dim}, {.dtype = DType::f64}).to(dtype);
}

std::pair<Tensor, Tensor> rotary_cos_sin(const Tensor& positions, int64_t head_dim, double base, DType dtype) {
  LOOM_CHECK(head_dim > 0 && head_dim % 2 == 0, "rotary_cos_sin: head_dim must be even and positive, got ", head_dim);
  LOOM_CHECK(!is_floating(positions.dtype()), "rotary_cos_sin: positions must be integers, got ", positions.dtype());
  const int64_t half = head_dim / 2;
  std::vector<double> pos = positions.tolist();
  std::vector<double> c(pos.size() * size_t(head_dim)), s(c.size());
  for (size_t p = 0; p < pos.size(); ++p)
    for (int64_t i = 0; i < half; ++i) {
      const double a = pos[p] * std::pow(base, -2.0 * double(i) / double(head_dim));
      c[p * head_dim + i] = c[p * head_dim + i + half] = std::cos(a);
      s[p * head_dim + i] = s[p * head_dim + i + half] = std::sin(a);
    }
  Shape shape = positions.shape();
  shape.push_back(head_dim);
  return {tensor(c, shape, {.dtype = DType::f64}).to(dtype), tensor(s, shape, {.dtype = DType::f64}).to(dtype)};
}

Tensor rotary_embed(const Tensor& x, const Tensor& cos, const Tensor& sin) {
  const int64_t D = x.size(-1);
  LOOM_CHECK(D % 2 == 0, "rotary_embed: the last dim must be even, got ", x.shape());
  LOOM_CHECK(cos.size(-1) == D && sin.size(-1) == D, "rotary_embed: cos/sin last dim must be ", D, ", got ", cos.shape());
  Tensor a = x.narrow(-1, 0, D / 2), b = x.narrow(-1, D / 2, D / 2);
  return x * cos + cat({-b, a}, -1) * sin;
}

std::pair<Tensor, Tensor> apply_rotary(const Tensor& q, const Tensor& k, const Tensor& positions, double base) {
  LOOM_CHECK(q.dim() >= 2 && k.dim() >= 2 && q.size(-1) == k.size(-1), "apply_rotary: q and k must be (..., T, D) with "
             "the same D; got ", q.shape(), " and ", k.shape());
  auto [c, s] = rotary_cos_sin(positions, q.size(-1), base, q.dtype());
  if (positions.dim() == 2 && q.dim() == 4) {  // (N, T) positions for (N, H, T, D): broadcast over heads
    c = c.unsqueeze(1);
    s = s.unsqueeze(1);
  }
  return {rotary_embed(q, c, s), rotary_embed(k, c, s)};
}

}  // namespace loom

namespace loom::nn {

namespace {
void check_options(const PositionalOptions& o, const char* who) {
  LOOM_CHECK(o.max_len > 0 && o.dim > 0, who, ": max_len and dim must be positive, got ", o.max_len, " and ", o.dim);
}
Tensor rows_for(const Tensor& x, const Tensor& table, int64_t offset, const std::string& who) {
  LOOM_CHECK(x.dim() >= 2 && x.size(-1) == table.size(1), who, ": expected input (N, T, ", table.size(1), "), got ",
             x.shape());
  const int64_t T = x.size(-2);
  LOOM_CHECK(offset >= 0 && offset + T <= table.size(0), who, ": positions [", offset, ", ", offset + T,
             ") exceed max_len ", table.size(0));
  return table.narrow(0, offset, T);
}
}  // namespace

LearnedPositionalEmbedding::LearnedPositionalEmbedding(const PositionalOptions& o) : options(o) {
  check_options(o, "LearnedPositionalEmbedding");
  weight = register_parameter("weight", empty({o.max_len, o.dim}));
  init::normal_(weight);
}

Tensor LearnedPositionalEmbedding::forward(const Tensor& x, int64_t offset) {
  return x + rows_for(x, weight, offset, repr());
}

std::string LearnedPositionalEmbedding::extra_repr() const {
  return std::to_string(options.max_len) + ", " + std::to_string(options.dim);
}

SinusoidalPositionalEncoding::SinusoidalPositionalEncoding(const PositionalOptions& o) : options(o) {
  check_options(o, "SinusoidalPositionalEncoding");
  pe = register_buffer("pe", sinusoidal_positions(o.max_len, o.dim), /*persistent=*/false);
}

Tensor SinusoidalPositionalEncoding::forward(const Tensor& x, int64_t offset) {
  return x + rows_for(x, pe, offset, repr()).to(x.dtype());
}

std::string SinusoidalPositionalEncoding::extra_repr() const {
  return std::to_string(options.max_len) + ", " + std::to_string(options.dim);
}

}  // namespace loom::nn
