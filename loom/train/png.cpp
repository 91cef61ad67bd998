// Filter type 0 (none) on every scanline: charts are mostly flat colour, which deflate already squeezes well,
// so the adaptive filters would add code for little gain.
#include "loom/train/png.h"

#include <zlib.h>

#include "loom/core/error.h"
#include "loom/io/safetensors.h"

namespace loom::train {

Image::Image(int width, int height, Rgb fill) : w_(width), h_(height) {
  LOOM_CHECK(width > 0 && height > 0 && width <= 16384 && height <= 16384, "Image: size ", width, "x", height,
             " is out of range");
  px_.resize(size_t(w_) * size_t(h_) * 3);
  for (size_t i = 0; i < px_.size(); i += 3) px_[i] = fill.r, px_[i + 1] = fill.g, px_[i + 2] = fill.b;
}

void Image::set(int x, int y, Rgb c) {
  if (x < 0 || y < 0 || x >= w_ || y >= h_) return;
  uint8_t* p = &px_[(size_t(y) * size_t(w_) + size_t(x)) * 3];
  p[0] = c.r, p[1] = c.g, p[2] = c.b;
}

Rgb Image::get(int x, int y) const {
  LOOM_CHECK(x >= 0 && y >= 0 && x < w_ && y < h_, "Image::get: (", x, ", ", y, ") is outside ", w_, "x", h_);
  const uint8_t* p = &px_[(size_t(y) * size_t(w_) + size_t(x)) * 3];
  return {p[0], p[1], p[2]};
}

namespace {

void put_u32(std::string& s, uint32_t v) {
  for (int shift = 24; shift >= 0; shift -= 8) s.push_back(char((v >> shift) & 0xff));
}

// length, type, data, CRC-32 of type + data (big-endian numbers throughout, as PNG wants).
void put_chunk(std::string& out, const char* type, const std::string& data) {
  put_u32(out, uint32_t(data.size()));
  std::string body(type, 4);
  body += data;
  out += body;
  put_u32(out, uint32_t(crc32(0L, reinterpret_cast<const Bytef*>(body.data()), uInt(body.size()))));
}

}  // namespace

std::string encode_png(const Image& img) {
  const size_t row = size_t(img.width()) * 3;
  std::string raw;
  raw.reserve((row + 1) * size_t(img.height()));
  for (int y = 0; y < img.height(); ++y) {
    raw.push_back('\0');
    raw.append(reinterpret_cast<const char*>(img.rgb().data()) + size_t(y) * row, row);
  }
  uLongf zlen = compressBound(uLong(raw.size()));
  std::string z(zlen, '\0');
  const int rc = compress2(reinterpret_cast<Bytef*>(z.data()), &zlen, reinterpret_cast<const Bytef*>(raw.data()),
                           uLong(raw.size()), 9);
  LOOM_CHECK(rc == Z_OK, "encode_png: zlib compress failed (", rc, ")");
  z.resize(zlen);

  std::string ihdr;
  put_u32(ihdr, uint32_t(img.width()));
  put_u32(ihdr, uint32_t(img.height()));
  ihdr += std::string("\x08\x02\x00\x00\x00", 5);  // 8-bit depth, truecolour, deflate, filter 0, no interlace

  std::string png("\x89PNG\r\n\x1a\n", 8);
  put_chunk(png, "IHDR", ihdr);
  put_chunk(png, "IDAT", z);
  put_chunk(png, "IEND", "");
  return png;
}

void write_png(const std::string& path, const Image& img) { io::write_file_atomic(path, encode_png(img)); }

}  // namespace loom::train
