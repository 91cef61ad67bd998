// loom::Error and LOOM_CHECK: one error style for the whole library.
//   LOOM_CHECK(x.dim() == 4, "conv2d: input must be (N, C, H, W), got ", x.shape());
//   try { ... } catch (const loom::Error& e) { std::cerr << e.what(); }
#pragma once
#include <sstream>
#include <stdexcept>
#include <string>
#include <vector>

namespace loom {

class Error : public std::runtime_error {
 public:
  using std::runtime_error::runtime_error;
};

namespace detail {
// Shapes (std::vector<int64_t>) print as [2, 3]; everything else through its operator<<.
void put(std::ostream& os, const std::vector<int64_t>& shape);
template <class T>
void put(std::ostream& os, const T& v) {
  os << v;
}
template <class... Args>
std::string cat_message(const Args&... args) {
  std::ostringstream os;
  (put(os, args), ...);
  return os.str();
}
[[noreturn]] void throw_error(const char* file, int line, const std::string& msg);
}  // namespace detail

}  // namespace loom

// The message comes first (it names the op and the shapes); file:line is appended for developers.
#define LOOM_CHECK(cond, ...)                                                              \
  do {                                                                                     \
    if (!(cond)) ::loom::detail::throw_error(__FILE__, __LINE__,                           \
                                             ::loom::detail::cat_message(__VA_ARGS__));    \
  } while (0)

#define LOOM_FAIL(...) ::loom::detail::throw_error(__FILE__, __LINE__, ::loom::detail::cat_message(__VA_ARGS__))
