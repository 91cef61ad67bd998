#include "loom/core/error.h"

#include <cstring>
#include <ostream>

namespace loom::detail {

void put(std::ostream& os, const std::vector<int64_t>& s) {
  os << '[';
  for (size_t i = 0; i < s.size(); ++i) os << (i ? ", " : "") << s[i];
  os << ']';
}

void throw_error(const char* file, int line, const std::string& msg) {
  const char* base = std::strrchr(file, '/');
  throw Error(msg + " (" + (base ? base + 1 : file) + ":" + std::to_string(line) + ")");
}

}  // namespace loom::detail
