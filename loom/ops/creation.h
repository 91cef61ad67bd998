// Tensor creation, like torch.zeros / torch.arange / torch.randn.
//   Tensor w = loom::randn({784, 10}, {.dtype = DType::f32, .requires_grad = true});
//   Tensor i = loom::arange(0, 10);                     // int64 when all arguments are integers
//   Tensor v = loom::tensor({1.0, 2.0, 3.0}, {3});      // from a std::vector
#pragma once
#include <initializer_list>
#include <vector>

#include "loom/core/generator.h"
#include "loom/core/tensor.h"

namespace loom {

Tensor empty(const Shape& shape, Options o = {});
Tensor zeros(const Shape& shape, Options o = {});
Tensor ones(const Shape& shape, Options o = {});
Tensor full(const Shape& shape, double value, Options o = {});
Tensor empty_like(const Tensor& t);
Tensor zeros_like(const Tensor& t);
Tensor ones_like(const Tensor& t);
Tensor full_like(const Tensor& t, double value);
Tensor scalar_tensor(double v, DType dtype = DType::f32);
Tensor arange(int64_t end, Options o = {.dtype = DType::i64});
Tensor arange(int64_t start, int64_t end, int64_t step = 1, Options o = {.dtype = DType::i64});
Tensor arange(double start, double end, double step, Options o = {});
Tensor linspace(double start, double end, int64_t steps, Options o = {});
Tensor eye(int64_t n, int64_t m = -1, Options o = {});

// From values in row-major order; `shape` defaults to a 1-d tensor of values.size() elements.
Tensor tensor(std::initializer_list<double> values, const Shape& shape = {}, Options o = {});
Tensor tensor(const std::vector<double>& values, const Shape& shape = {}, Options o = {});
Tensor tensor(const std::vector<float>& values, const Shape& shape = {}, Options o = {});
Tensor tensor(const std::vector<int64_t>& values, const Shape& shape = {}, Options o = {.dtype = DType::i64});

// Random tensors from `gen` (default: the global generator, seeded by loom::manual_seed).
Tensor rand(const Shape& shape, Options o = {}, Generator* gen = nullptr);
Tensor randn(const Shape& shape, Options o = {}, Generator* gen = nullptr);
Tensor randint(int64_t low, int64_t high, const Shape& shape, Options o = {.dtype = DType::i64}, Generator* gen = nullptr);
Tensor randperm(int64_t n, Options o = {.dtype = DType::i64}, Generator* gen = nullptr);
Tensor rand_like(const Tensor& t, Generator* gen = nullptr);
Tensor randn_like(const Tensor& t, Generator* gen = nullptr);
// Elementwise Bernoulli(p) sample with t's shape/dtype (dropout masks).
Tensor bernoulli(const Tensor& t, double p, Generator* gen = nullptr);

}  // namespace loom
