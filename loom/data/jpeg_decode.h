// JPEG decoding through libjpeg-turbo (Debian's libjpeg62-turbo; what PIL, and so torchvision, decode with).
// Debian's stb_image 2.27 reads out of its Huffman tables on corrupt entropy-coded data (found by fuzz_image, with
// shift and table overflows before it), so stb decodes every other format and libjpeg-turbo the JPEGs.
//   Tensor img = data::decode_jpeg(bytes, "photo.jpg", 3);   // u8 (H, W, 3)
#pragma once
#include <string>

#include "loom/core/tensor.h"

namespace loom::data {

// u8 (H, W, C): channels 1 (grey: the Y plane), 3 (RGB), 4 (RGB + opaque alpha), 0 the file's own (1 or 3).
// CMYK/YCCK files (Adobe, inverted) are converted to RGB. A header declaring more pixels than the limits allow
// (max_image_pixels, memory, at most 8192 pixels per byte of file), a truncated or corrupt file, or more than
// 500 progressive scans is a loom::Error naming `name`; corrupt data is never returned as pixels.
Tensor decode_jpeg(const std::string& bytes, const std::string& name, int channels);

}  // namespace loom::data
