// Checks a JPEG's Huffman tables before the decoder sees them, so a damaged table is reported with its byte
// offset. Written when stb_image decoded JPEGs: Debian's stb_image (v2.27) trusts the 16 code counts of a DHT
// table, and counts summing past 256 wrote beyond its 257-byte size table (found by fuzz_image). JPEGs are now
// decoded by libjpeg-turbo (jpeg_decode.h), which refuses such tables itself; the check stays for its message.
//   data::check_jpeg_tables(bytes, "photo.jpg");   // throws loom::Error naming the file and the offset
#pragma once
#include <string>
#include <string_view>

namespace loom::data {

// Walks the JPEG's marker segments (and the entropy-coded data after each SOS up to the next marker) and
// throws when a DHT table declares more than 256 codes or runs past its segment. Does nothing for data that
// does not start with a JPEG SOI marker; other damage is left to the decoder's own errors.
void check_jpeg_tables(std::string_view bytes, const std::string& name);

}  // namespace loom::data
