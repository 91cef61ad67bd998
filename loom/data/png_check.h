// Walks a PNG's chunk list before stb_image reads it. Debian's stb_image (v2.27) trusts each IDAT chunk's declared
// length and grows its buffer to fit before reading the data, so a 144-byte file whose second chunk claims ~1.8 GB
// made it allocate 2 GB (found by fuzz_image). decode_image calls this first: a chunk that claims more bytes than
// the file has left is an error naming the chunk and its offset, and stb only ever sees chunks that fit.
//   data::check_png_chunks(bytes, "cat.png");   // throws loom::Error for a truncated or corrupt chunk list
#pragma once
#include <string>
#include <string_view>

namespace loom::data {

// Does nothing for data that does not start with the PNG signature. Stops at IEND (stb ignores what follows);
// a list that ends without IEND is left to the decoder, which reports it.
void check_png_chunks(std::string_view bytes, const std::string& name);

}  // namespace loom::data
