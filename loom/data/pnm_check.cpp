#include "loom/data/pnm_check.h"

#include <climits>
#include <cstdint>

#include "loom/core/error.h"

namespace loom::data {

void check_pnm_header(std::string_view b, const std::string& name) {
  if (b.size() < 2 || b[0] != 'P' || (b[1] != '5' && b[1] != '6')) return;
  size_t at = 2;
  auto space = [](char c) { return c == ' ' || c == '\t' || c == '\n' || c == '\v' || c == '\f' || c == '\r'; };
  auto skip = [&] {  // whitespace, and '#' comments up to the end of their line, as stb skips them
    for (;;) {
      while (at < b.size() && space(b[at])) ++at;
      if (at >= b.size() || b[at] != '#') return;
      while (at < b.size() && b[at] != '\n' && b[at] != '\r') ++at;
    }
  };
  for (const char* field : {"width", "height", "maximum value"}) {
    skip();
    int64_t value = 0;
    const size_t start = at;
    while (at < b.size() && b[at] >= '0' && b[at] <= '9') {
      value = value * 10 + (b[at] - '0');
      LOOM_CHECK(value <= INT_MAX, name, ": the PNM header's ", field, " (", b.substr(start, std::min<size_t>(at - start + 1, 24)),
                 "...) is too large (at most ", INT_MAX, "): the file is corrupt");
      ++at;
    }
    // stb 2.27 converts a 16-bit PGM/PPM to the asked channel count with its 8-bit converter and then reads the
    // result as 16-bit, past the end of its buffer (found by fuzz_image): 16-bit files are refused instead.
    if (field[0] == 'm')
      LOOM_CHECK(value <= 255, name, ": 16-bit PGM/PPM (maximum value ", value, ") is not supported: convert it to 8 bits "
                 "or to PNG");
  }
}

}  // namespace loom::data
