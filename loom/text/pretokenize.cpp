#include "loom/text/pretokenize.h"

#include "loom/text/unicode.h"

namespace loom::text {

namespace {

bool is_other(char32_t c) { return !is_js_space(c) && !is_letter(c) && !is_number(c); }

// Length (in code points) of the match of the pattern at position p of cps[0, n). Every code point is a
// letter, a number, whitespace or none of these, so some alternative always matches at least one.
size_t match_at(const std::u32string& cps, size_t p) {
  const size_t n = cps.size();
  const char32_t c = cps[p];
  if (c == '\'' && p + 1 < n) {
    const char32_t a = cps[p + 1];
    if (a == 's' || a == 't' || a == 'm' || a == 'd') return 2;
    if (p + 2 < n) {
      const char32_t b = cps[p + 2];
      if ((a == 'r' && b == 'e') || (a == 'v' && b == 'e') || (a == 'l' && b == 'l')) return 3;
    }
  }
  // " ?X+" for the three classes: the optional space is a literal U+0020, taken only if X follows it
  // (without it, X+ would have to start at the space itself, which no class below contains).
  const size_t q = c == ' ' ? p + 1 : p;
  if (q < n) {
    for (bool (*cls)(char32_t) : {is_letter, is_number, is_other}) {
      if (!cls(cps[q])) continue;
      size_t e = q + 1;
      while (e < n && cls(cps[e])) ++e;
      return e - p;
    }
  }
  // Whitespace. "\s+(?!\S)" backs off one character so that the last space of a run is left to prefix the
  // next word; at the end of the text it takes the whole run; a single space before a word is "\s+".
  size_t e = p + 1;
  while (e < n && is_js_space(cps[e])) ++e;
  if (e == n || e - p == 1) return e - p;
  return e - p - 1;
}

}  // namespace

void gpt2_pretokenize_valid(std::string_view text, std::vector<std::string_view>& out) {
  std::u32string cps;
  std::vector<size_t> offset;  // byte offset of each code point, plus the end
  cps.reserve(text.size());
  offset.reserve(text.size() + 1);
  for (size_t i = 0; i < text.size();) {
    offset.push_back(i);
    cps.push_back(detail::next_codepoint(text, i));
  }
  offset.push_back(text.size());
  for (size_t p = 0; p < cps.size();) {
    const size_t len = match_at(cps, p);
    out.push_back(text.substr(offset[p], offset[p + len] - offset[p]));
    p += len;
  }
}

std::vector<std::string> gpt2_pretokenize(std::string_view text) {
  const std::string clean = sanitize_utf8(text);
  std::vector<std::string_view> views;
  gpt2_pretokenize_valid(clean, views);
  return std::vector<std::string>(views.begin(), views.end());
}

const std::array<char32_t, 256>& byte_to_unicode() {
  static const std::array<char32_t, 256> table = [] {
    std::array<char32_t, 256> t{};
    char32_t next = 256;
    for (int b = 0; b < 256; ++b) {
      const bool prints = (b >= 33 && b <= 126) || (b >= 161 && b <= 172) || (b >= 174 && b <= 255);
      t[b] = prints ? char32_t(b) : next++;
    }
    return t;
  }();
  return table;
}

std::optional<unsigned char> unicode_to_byte(char32_t c) {
  static const std::array<int, 324> inverse = [] {
    std::array<int, 324> inv;
    inv.fill(-1);
    const auto& t = byte_to_unicode();
    for (int b = 0; b < 256; ++b) inv[t[b]] = b;
    return inv;
  }();
  if (c >= inverse.size() || inverse[c] < 0) return std::nullopt;
  return static_cast<unsigned char>(inverse[c]);
}

std::string bytes_to_bpe_chars(std::string_view bytes) {
  const auto& t = byte_to_unicode();
  std::string out;
  out.reserve(bytes.size() * 2);
  for (char b : bytes) append_utf8(out, t[static_cast<unsigned char>(b)]);
  return out;
}

std::optional<std::string> bpe_chars_to_bytes(std::string_view s) {
  std::string out;
  out.reserve(s.size());
  for (size_t i = 0; i < s.size();) {
    auto b = unicode_to_byte(detail::next_codepoint(s, i));
    if (!b) return std::nullopt;
    out += char(*b);
  }
  return out;
}

}  // namespace loom::text
