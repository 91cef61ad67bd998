// Checks a binary PGM/PPM (P5/P6) header before stb_image reads it. Debian's stb_image (v2.27) accumulates each
// header number in an int without a bound, so "P6 6999999999..." overflows (undefined behaviour; found by
// fuzz_image; upstream bounded it in v2.28). decode_image calls this first, so such a header is an error.
//   data::check_pnm_header(bytes, "photo.ppm");   // throws loom::Error naming the file and the field
#pragma once
#include <string>
#include <string_view>

namespace loom::data {

// Reads width, height and maximum value the way stb does (whitespace and '#' comments between them) and
// throws when one of them does not fit stb's int. Does nothing for data that does not start with P5 or P6;
// other damage is left to the decoder's own errors and loom's size limits.
void check_pnm_header(std::string_view bytes, const std::string& name);

}  // namespace loom::data
