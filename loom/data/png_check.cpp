#include "loom/data/png_check.h"

#include <cstdint>

#include "loom/core/error.h"

namespace loom::data {

void check_png_chunks(std::string_view b, const std::string& name) {
  static constexpr std::string_view signature("\x89PNG\r\n\x1a\n", 8);
  if (b.substr(0, 8) != signature) return;
  auto be32 = [&](size_t at) {
    return uint32_t(uint8_t(b[at])) << 24 | uint32_t(uint8_t(b[at + 1])) << 16 | uint32_t(uint8_t(b[at + 2])) << 8 |
           uint32_t(uint8_t(b[at + 3]));
  };
  // Each chunk: 4-byte big-endian length, 4-byte type, the data, a 4-byte CRC; stb walks them the same way.
  size_t at = 8;
  while (at + 8 <= b.size()) {
    const uint64_t length = be32(at);
    std::string type(b.substr(at + 4, 4));
    for (char& c : type)
      if (c < 32 || c > 126) c = '?';
    const uint64_t left = b.size() - at - 8;
    LOOM_CHECK(length <= 0x7fffffffu, name, ": PNG chunk '", type, "' at byte ", at, " declares ", length,
               " bytes, more than the format allows (2^31 - 1): the file is corrupt");
    LOOM_CHECK(length + 4 <= left, name, ": PNG chunk '", type, "' at byte ", at, " declares ", length,
               " bytes of data but only ", left, " bytes (data and CRC) follow: the file is truncated or corrupt");
    if (type == "IEND") return;
    at += 12 + size_t(length);
  }
}

}  // namespace loom::data
