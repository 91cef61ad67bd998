#include "loom/core/shape.h"

#include <algorithm>
#include <cstdint>

#include "loom/core/error.h"

namespace loom {

std::ostream& operator<<(std::ostream& os, const Shape& s) {
  os << '[';
  for (size_t i = 0; i < s.size(); ++i) os << (i ? ", " : "") << s[i];
  return os << ']';
}

int64_t numel(const Shape& s) {
  // A zero dim makes the tensor empty whatever the others are (a file may declare [2^31, 0, 2^31]); multiplying
  // in order first would overflow int64, which is undefined behaviour.
  for (auto d : s)
    if (d == 0) return 0;
  int64_t n = 1;
  for (auto d : s)
    LOOM_CHECK(!__builtin_mul_overflow(n, d, &n), "shape ", s, " has more elements than int64 can count");
  return n;
}

Shape contiguous_strides(const Shape& s) {
  Shape st(s.size());
  int64_t acc = 1;
  for (size_t i = s.size(); i-- > 0;) {
    st[i] = acc;
    // Only an empty tensor with huge other dims can overflow here (a non-empty one fails numel first); its
    // strides address no memory, so saturating is safe where wrapping would be undefined behaviour.
    if (__builtin_mul_overflow(acc, std::max<int64_t>(s[i], 1), &acc)) acc = INT64_MAX;
  }
  return st;
}

int64_t wrap_dim(int64_t dim, int64_t ndim, const char* op) {
  int64_t n = std::max<int64_t>(ndim, 1);  // a 0-dim tensor accepts dim 0 and -1, as in PyTorch
  LOOM_CHECK(dim >= -n && dim < n, op, ": dim ", dim, " out of range for a tensor of ", ndim,
             " dims (expected in [", -n, ", ", n - 1, "])");
  return dim < 0 ? dim + n : dim;
}

Shape broadcast_shapes(const Shape& a, const Shape& b, const char* op) {
  size_t n = std::max(a.size(), b.size());
  Shape out(n);
  for (size_t i = 0; i < n; ++i) {
    int64_t da = i < n - a.size() ? 1 : a[i - (n - a.size())];
    int64_t db = i < n - b.size() ? 1 : b[i - (n - b.size())];
    LOOM_CHECK(da == db || da == 1 || db == 1, op, ": shapes ", a, " and ", b,
               " cannot be broadcast together (dim ", i, ": ", da, " vs ", db, ")");
    out[i] = da == 1 ? db : da;
  }
  return out;
}

}  // namespace loom
