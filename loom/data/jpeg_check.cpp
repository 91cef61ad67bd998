#include "loom/data/jpeg_check.h"

#include <algorithm>
#include <cstdint>

#include "loom/core/error.h"

namespace loom::data {

namespace {

uint8_t byte_at(std::string_view s, size_t i) { return static_cast<uint8_t>(s[i]); }

// One DHT segment's tables, read the way stb_image reads them: while bytes remain, a class/id byte, 16 counts,
// then as many symbol bytes as the counts add up to.
void check_dht(std::string_view s, size_t begin, size_t end, const std::string& name) {
  size_t at = begin;
  while (at < end) {
    LOOM_CHECK(end - at >= 17, name, ": JPEG Huffman table at byte ", at, " is cut short (", end - at,
               " bytes left in its segment, 17 needed for its header)");
    int n = 0;
    for (int i = 0; i < 16; ++i) n += byte_at(s, at + 1 + size_t(i));
    LOOM_CHECK(n <= 256, name, ": JPEG Huffman table at byte ", at, " declares ", n, " codes (at most 256)");
    LOOM_CHECK(end - at - 17 >= size_t(n), name, ": JPEG Huffman table at byte ", at, " declares ", n,
               " codes but its segment has ", end - at - 17, " bytes left");
    at += 17 + size_t(n);
  }
}

}  // namespace

void check_jpeg_tables(std::string_view s, const std::string& name) {
  // stb reads a marker as 0xFF, any number of fill 0xFFs, then the code: so FF FF ... FF D8 starts a JPEG too.
  size_t i = 0;
  if (s.empty() || byte_at(s, 0) != 0xFF) return;  // not a JPEG
  while (i < s.size() && byte_at(s, i) == 0xFF) ++i;
  if (i >= s.size() || byte_at(s, i) != 0xD8) return;
  ++i;
  while (i < s.size()) {
    // A marker: 0xFF (any number of fill 0xFFs), then the code.
    if (byte_at(s, i) != 0xFF) {
      ++i;  // junk between segments: stb skips it too
      continue;
    }
    while (i < s.size() && byte_at(s, i) == 0xFF) ++i;
    if (i >= s.size()) return;
    const uint8_t code = byte_at(s, i++);
    if (code == 0xD9) return;                                        // EOI
    if (code == 0x00 || code == 0x01 || (code >= 0xD0 && code <= 0xD7)) continue;  // no length follows
    if (i + 2 > s.size()) return;
    const size_t len = (size_t(byte_at(s, i)) << 8) | byte_at(s, i + 1);
    if (len < 2) return;  // the decoder reports this
    const size_t end = std::min(s.size(), i + len);
    if (code == 0xC4) check_dht(s, i + 2, end, name);
    i = end;
    if (code == 0xDA) {
      // Entropy-coded data follows SOS: 0xFF is stuffed as FF 00, restarts are FF D0..D7; any other FF xx is
      // the next marker (a DHT may come between the scans of a progressive JPEG).
      while (i + 1 < s.size()) {
        if (byte_at(s, i) == 0xFF) {
          const uint8_t next = byte_at(s, i + 1);
          if (next != 0x00 && next != 0xFF && !(next >= 0xD0 && next <= 0xD7)) break;
        }
        ++i;
      }
    }
  }
}

}  // namespace loom::data
