// What the text loaders do with bytes that are not UTF-8: they are read as U+FFFD either way, but never
// silently: one warning per file naming the first bad byte's offset, or (strict) an error.
//   text::check_utf8(corpus, "notes.txt", text::Utf8Errors::warn);      // stderr: "warning: notes.txt: ..."
//   text::check_utf8(corpus, "notes.txt", text::parse_utf8_errors("strict"));   // throws loom::Error instead
#pragma once
#include <cstddef>
#include <string>
#include <string_view>

namespace loom::text {

enum class Utf8Errors { warn, strict };

// "replace" (warn and read bad bytes as U+FFFD) or "strict"; anything else throws naming the value.
Utf8Errors parse_utf8_errors(const std::string& value);

struct Utf8Problems {
  size_t first_offset = std::string_view::npos;  // byte offset of the first invalid sequence; npos when valid
  size_t count = 0;                              // invalid sequences (each becomes one U+FFFD)
};
// Scans with the same decoder the tokenizers use (utf8_to_codepoints).
Utf8Problems find_invalid_utf8(std::string_view text);

// Valid text: nothing. Otherwise warn: one line on stderr ("warning: SOURCE: invalid UTF-8 at byte offset N
// (K invalid sequences), read as U+FFFD; pass --errors strict to stop instead"); strict: throws loom::Error
// with the same facts.
void check_utf8(std::string_view text, const std::string& source, Utf8Errors mode);

}  // namespace loom::text
