#include "loom/text/unicode.h"

#include <algorithm>

namespace loom::text {

namespace {

bool in_ranges(char32_t c, const detail::CodeRange* r, size_t n) {
  const detail::CodeRange* end = r + n;
  // The first range whose upper end reaches c; c is inside it or in no range at all.
  const detail::CodeRange* it = std::lower_bound(r, end, c, [](const detail::CodeRange& a, char32_t v) {
    return a.hi < v;
  });
  return it != end && it->lo <= c;
}

constexpr char32_t kReplacement = 0xFFFD;

}  // namespace

bool is_letter(char32_t c) {
  if (c < 0x80) return (c | 0x20) >= 'a' && (c | 0x20) <= 'z';
  return in_ranges(c, detail::kLetterRanges, detail::kLetterRangesCount);
}

bool is_number(char32_t c) {
  if (c < 0x80) return c >= '0' && c <= '9';
  return in_ranges(c, detail::kNumberRanges, detail::kNumberRangesCount);
}

bool is_mark(char32_t c) { return c >= 0x300 && in_ranges(c, detail::kMarkRanges, detail::kMarkRangesCount); }

bool is_js_space(char32_t c) {
  if (c < 0x80) return c == ' ' || (c >= 0x09 && c <= 0x0D);
  return in_ranges(c, detail::kSpaceRanges, detail::kSpaceRangesCount);
}

const char* unicode_tables_version() { return detail::kUnicodeVersion; }

namespace detail {

// WHATWG's decoder: a lead byte fixes the sequence length and the allowed range of the first continuation
// byte (which excludes overlongs, surrogates and values past U+10FFFF). When a continuation byte is out of
// range, what was read so far becomes one U+FFFD and that byte starts the next code point.
char32_t next_codepoint(std::string_view s, size_t& i) {
  const auto b0 = static_cast<unsigned char>(s[i++]);
  if (b0 < 0x80) return b0;
  int need;
  char32_t cp;
  unsigned char lo = 0x80, hi = 0xBF;
  if (b0 >= 0xC2 && b0 <= 0xDF) {
    need = 1, cp = b0 & 0x1F;
  } else if (b0 >= 0xE0 && b0 <= 0xEF) {
    need = 2, cp = b0 & 0x0F;
    if (b0 == 0xE0) lo = 0xA0;
    if (b0 == 0xED) hi = 0x9F;
  } else if (b0 >= 0xF0 && b0 <= 0xF4) {
    need = 3, cp = b0 & 0x07;
    if (b0 == 0xF0) lo = 0x90;
    if (b0 == 0xF4) hi = 0x8F;
  } else {
    return kReplacement;
  }
  for (int k = 0; k < need; ++k) {
    if (i >= s.size()) return kReplacement;
    const auto b = static_cast<unsigned char>(s[i]);
    if (b < lo || b > hi) return kReplacement;  // b is not consumed
    cp = (cp << 6) | (b & 0x3F);
    lo = 0x80, hi = 0xBF;
    ++i;
  }
  return cp;
}

}  // namespace detail

std::u32string utf8_to_codepoints(std::string_view s) {
  std::u32string out;
  out.reserve(s.size());
  for (size_t i = 0; i < s.size();) out.push_back(detail::next_codepoint(s, i));
  return out;
}

bool is_valid_utf8(std::string_view s) {
  for (size_t i = 0; i < s.size();) {
    if (static_cast<unsigned char>(s[i]) < 0x80) {
      ++i;
      continue;
    }
    const size_t start = i;
    const char32_t c = detail::next_codepoint(s, i);
    // A U+FFFD back is bad input unless the text really spelled U+FFFD.
    if (c == kReplacement && s.substr(start, i - start) != "\xEF\xBF\xBD") return false;
  }
  return true;
}

std::string sanitize_utf8(std::string_view s) {
  if (is_valid_utf8(s)) return std::string(s);
  std::string out;
  out.reserve(s.size() + 8);
  for (size_t i = 0; i < s.size();) append_utf8(out, detail::next_codepoint(s, i));
  return out;
}

void append_utf8(std::string& out, char32_t c) {
  if (c < 0x80) {
    out += char(c);
  } else if (c < 0x800) {
    out += char(0xC0 | (c >> 6));
    out += char(0x80 | (c & 0x3F));
  } else if (c < 0x10000) {
    out += char(0xE0 | (c >> 12));
    out += char(0x80 | ((c >> 6) & 0x3F));
    out += char(0x80 | (c & 0x3F));
  } else {
    out += char(0xF0 | (c >> 18));
    out += char(0x80 | ((c >> 12) & 0x3F));
    out += char(0x80 | ((c >> 6) & 0x3F));
    out += char(0x80 | (c & 0x3F));
  }
}

std::string to_utf8(std::u32string_view cps) {
  std::string out;
  out.reserve(cps.size());
  for (char32_t c : cps) append_utf8(out, c);
  return out;
}

}  // namespace loom::text
