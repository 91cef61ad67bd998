// A minimal PNG encoder (8-bit RGB, no interlace) for the charts a run writes; zlib does the compression.
//   train::Image img(640, 480);                 // white
//   img.set(10, 20, {255, 0, 0});
//   train::write_png("curves.png", img);        // atomic: a temp file renamed over the target
#pragma once
#include <cstdint>
#include <string>
#include <vector>

namespace loom::train {

struct Rgb {
  uint8_t r = 0, g = 0, b = 0;
  bool operator==(const Rgb&) const = default;
};

class Image {
 public:
  Image(int width, int height, Rgb fill = {255, 255, 255});
  int width() const { return w_; }
  int height() const { return h_; }
  // Pixels outside the image are ignored (drawing code clips by construction).
  void set(int x, int y, Rgb c);
  Rgb get(int x, int y) const;
  const std::vector<uint8_t>& rgb() const { return px_; }  // row-major, 3 bytes a pixel

 private:
  int w_, h_;
  std::vector<uint8_t> px_;
};

// The PNG file's bytes: signature, IHDR, one IDAT (filter 0 on every row), IEND, each chunk with its CRC.
std::string encode_png(const Image& img);
void write_png(const std::string& path, const Image& img);

}  // namespace loom::train
