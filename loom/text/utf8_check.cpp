#include "loom/text/utf8_check.h"

#include <iostream>

#include "loom/core/error.h"
#include "loom/text/unicode.h"

namespace loom::text {

Utf8Errors parse_utf8_errors(const std::string& value) {
  if (value == "replace" || value == "warn") return Utf8Errors::warn;
  if (value == "strict") return Utf8Errors::strict;
  LOOM_FAIL("--errors: expected replace or strict, got '", value, "'");
}

Utf8Problems find_invalid_utf8(std::string_view s) {
  Utf8Problems p;
  for (size_t i = 0; i < s.size();) {
    if (static_cast<unsigned char>(s[i]) < 0x80) {  // ASCII fast path: most corpora are nearly all ASCII
      ++i;
      continue;
    }
    const size_t start = i;
    const char32_t c = detail::next_codepoint(s, i);
    if (c == 0xFFFD && s.substr(start, i - start) != "\xEF\xBF\xBD") {
      if (p.count++ == 0) p.first_offset = start;
    }
  }
  return p;
}

void check_utf8(std::string_view text, const std::string& source, Utf8Errors mode) {
  const Utf8Problems p = find_invalid_utf8(text);
  if (p.count == 0) return;
  LOOM_CHECK(mode != Utf8Errors::strict, source, ": invalid UTF-8 at byte offset ", p.first_offset, " (", p.count,
             " invalid sequence", p.count == 1 ? "" : "s", " in ", text.size(), " bytes); expected UTF-8 text");
  std::cerr << "warning: " << source << ": invalid UTF-8 at byte offset " << p.first_offset << " (" << p.count
            << " invalid sequence" << (p.count == 1 ? "" : "s") << "), read as U+FFFD; pass --errors strict to "
            << "stop instead\n";
}

}  // namespace loom::text
