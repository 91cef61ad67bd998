// GPT-2's byte-level front end: the pre-tokenisation regex and the byte <-> printable character table.
//   auto pieces = text::gpt2_pretokenize("Hello world's  end");  // "Hello", " world", "'s", " ", " end"
//   char32_t c = text::byte_to_unicode()[' '];                    // U+0120 'Ġ'
//   std::string bpe_form = text::bytes_to_bpe_chars(" hi");        // "Ġhi"
#pragma once
#include <array>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace loom::text {

// Splits text as GPT-2's pattern does under JavaScript's regex engine with the u flag:
//   's|'t|'re|'ve|'m|'ll|'d| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+(?!\S)|\s+
// Invalid UTF-8 is first replaced with U+FFFD (as node does when it reads bytes as UTF-8), so the pieces are
// valid UTF-8 and, for valid input, concatenate back to exactly the input.
std::vector<std::string> gpt2_pretokenize(std::string_view text);
// The same on text known to be valid UTF-8: the pieces are views into `text`.
void gpt2_pretokenize_valid(std::string_view text, std::vector<std::string_view>& out);

// GPT-2's table from bytes to printable code points: bytes that print (33-126, 161-172, 174-255) map to
// themselves, the other 68 to U+0100.. in byte order, so every byte string becomes visible text.
const std::array<char32_t, 256>& byte_to_unicode();
// The inverse: the byte a table code point stands for, or nullopt for any other code point.
std::optional<unsigned char> unicode_to_byte(char32_t c);
// Raw bytes -> the table's characters as UTF-8 (how tokens are spelled in encoder.json and vocab.bpe).
std::string bytes_to_bpe_chars(std::string_view bytes);
// The inverse; nullopt when `s` holds a character outside the table.
std::optional<std::string> bpe_chars_to_bytes(std::string_view s);

}  // namespace loom::text
