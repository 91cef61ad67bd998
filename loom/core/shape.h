// Shapes, strides and the helpers that every op uses to check and broadcast them.
//   Shape s{2, 3};  numel(s) == 6;  contiguous_strides(s) == Shape{3, 1}
//   broadcast_shapes({2, 1}, {3}, "add") == Shape{2, 3}
#pragma once
#include <cstdint>
#include <ostream>
#include <vector>

namespace loom {

using Shape = std::vector<int64_t>;

std::ostream& operator<<(std::ostream& os, const Shape& s);  // prints [2, 3]
int64_t numel(const Shape& s);
Shape contiguous_strides(const Shape& s);
// Wraps a possibly negative dim into [0, ndim); throws naming `op` when out of range.
int64_t wrap_dim(int64_t dim, int64_t ndim, const char* op);
Shape broadcast_shapes(const Shape& a, const Shape& b, const char* op);

}  // namespace loom
