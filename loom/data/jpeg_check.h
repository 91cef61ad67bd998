// Checks a JPEG's Huffman tables before stb_image sees them. Debian's stb_image (v2.27) trusts the 16 code
// counts of a DHT table: counts summing past 256 write beyond its 257-byte size table (found by fuzz_image;
// upstream added the check in v2.28). decode_image calls this first, so such a file is an error, not memory
// corruption.
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
