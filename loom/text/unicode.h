// Code point classes and UTF-8 helpers for the tokenizers.
//   std::u32string cps = text::utf8_to_codepoints("héllo\xff");  // invalid bytes become U+FFFD
//   bool l = text::is_letter(U'é'), n = text::is_number(U'٣'), s = text::is_js_space(U'\u00a0');
//   std::string s8 = text::to_utf8(cps);
#pragma once
#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>

namespace loom::text {

// \p{L}, \p{N}, \p{M} and JavaScript's \s, with the tables node's regex engine uses (unicode_tables.cpp).
bool is_letter(char32_t c);
bool is_number(char32_t c);
bool is_mark(char32_t c);
bool is_js_space(char32_t c);
// The Unicode version the tables were generated from.
const char* unicode_tables_version();

// Decodes UTF-8 as the WHATWG Encoding standard does (what node's TextDecoder and Buffer.toString do):
// each maximal invalid subsequence becomes one U+FFFD, so the result never fails and never drops text.
std::u32string utf8_to_codepoints(std::string_view s);
// True when `s` is well-formed UTF-8 (no overlongs, surrogates or code points past U+10FFFF).
bool is_valid_utf8(std::string_view s);
// `s` with every invalid subsequence replaced by U+FFFD (unchanged, and cheap, when it is valid).
std::string sanitize_utf8(std::string_view s);
void append_utf8(std::string& out, char32_t c);
std::string to_utf8(std::u32string_view cps);

namespace detail {
struct CodeRange {
  char32_t lo, hi;
};
extern const char* const kUnicodeVersion;
extern const CodeRange kLetterRanges[], kNumberRanges[], kMarkRanges[], kSpaceRanges[];
extern const size_t kLetterRangesCount, kNumberRangesCount, kMarkRangesCount, kSpaceRangesCount;
// Reads one code point at s[i], advancing i past it; invalid input yields U+FFFD per WHATWG.
char32_t next_codepoint(std::string_view s, size_t& i);
}  // namespace detail

}  // namespace loom::text
