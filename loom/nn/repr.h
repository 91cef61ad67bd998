// Python-style formatting for module reprs, so loom prints layers exactly as PyTorch does.
//   py_float(1e-5) == "1e-05";  py_float(0.1) == "0.1";  py_float(1.0) == "1.0"
//   py_bool(true) == "True";    py_tuple({3, 3}) == "(3, 3)";  py_tuple({10}) == "(10,)"
#pragma once
#include <cstdint>
#include <string>
#include <vector>

namespace loom::nn {

// Python's repr of a float: the shortest digits that round-trip, fixed notation for exponents in
// [-4, 16), scientific ("1e-05") otherwise.
std::string py_float(double v);
inline std::string py_bool(bool b) { return b ? "True" : "False"; }
std::string py_tuple(const std::vector<int64_t>& v);
// Thousands separators, as Keras prints parameter counts: 1234567 -> "1,234,567".
std::string group_digits(int64_t v);

}  // namespace loom::nn
