// IntPair: a 2-d size that accepts one int for both dims or two ints, as PyTorch's _size_2_t does.
//   nn::Conv2dOptions o{.in = 3, .out = 8, .kernel_size = 3, .padding = {1, 2}};   // (3, 3) and (1, 2)
#pragma once
#include <array>
#include <cstdint>
#include <string>

namespace loom::nn {

struct IntPair {
  int64_t h = 0, w = 0;
  constexpr IntPair(int64_t v = 0) : h(v), w(v) {}  // NOLINT: implicit on purpose, `.stride = 2`
  constexpr IntPair(int64_t h_, int64_t w_) : h(h_), w(w_) {}
  constexpr bool operator==(const IntPair&) const = default;
  std::array<int64_t, 2> arr() const { return {h, w}; }
  // PyTorch's repr of the value: "(3, 3)".
  std::string tuple() const {
    std::string s = "(";  // appended piecewise: GCC 12 flags "(" + std::string with a false -Wrestrict
    s += std::to_string(h);
    s += ", ";
    s += std::to_string(w);
    return s += ")";
  }
  // An int when both dims agree ("2"), else the tuple: how pooling layers print what they were given.
  std::string compact() const { return h == w ? std::to_string(h) : tuple(); }
};

}  // namespace loom::nn
