#include "loom/data/mnist.h"

#include <algorithm>
#include <cstdio>
#include <cstring>
#include <filesystem>

#include "loom/data/file_util.h"

namespace loom::data {

namespace {

std::string hex(unsigned v) {
  char b[16];
  std::snprintf(b, sizeof b, "0x%08x", v);
  return b;
}

uint32_t be32(const unsigned char* p) {
  return (uint32_t(p[0]) << 24) | (uint32_t(p[1]) << 16) | (uint32_t(p[2]) << 8) | uint32_t(p[3]);
}

// Copies `count` big-endian items of `size` bytes into native order.
void copy_be(char* dst, const unsigned char* src, int64_t count, size_t size) {
  if (count == 0) return;  // an empty tensor has no memory: memcpy from/to null is undefined even for 0 bytes
  if (size == 1) { std::memcpy(dst, src, size_t(count)); return; }
  for (int64_t i = 0; i < count; ++i)
    for (size_t b = 0; b < size; ++b) dst[size_t(i) * size + b] = char(src[size_t(i) * size + (size - 1 - b)]);
}

std::string find_file(const std::string& dir, const std::string& split, const std::string& kind) {
  const std::string stems[] = {split + "-" + kind + "-ubyte", split + "-" + (kind == "images-idx3" ? "images.idx3" :
                                                                                "labels.idx1") + "-ubyte"};
  std::string tried;
  for (const auto& stem : stems)
    for (const char* ext : {"", ".gz"}) {
      const std::string p = (std::filesystem::path(dir) / (stem + ext)).string();
      if (std::filesystem::exists(p)) return p;
      tried += (tried.empty() ? "" : ", ") + stem + ext;
    }
  LOOM_FAIL("MNIST: no ", kind, " file for the ", split == "train" ? "training" : "test", " split in ", dir,
            " (looked for ", tried, ")");
}

}  // namespace

Tensor read_idx(const std::string& path) {
  const std::string bytes = read_file_maybe_gzip(path);
  const auto* p = reinterpret_cast<const unsigned char*>(bytes.data());
  LOOM_CHECK(bytes.size() >= 4, path, ": IDX file is too short (", bytes.size(), " bytes) to hold a header");
  LOOM_CHECK(p[0] == 0 && p[1] == 0, path, ": bad IDX magic number ", hex(be32(p)),
             " (the first two bytes must be zero)");
  DType dt;
  switch (p[2]) {
    case 0x08: dt = DType::u8; break;
    case 0x0C: dt = DType::i32; break;
    case 0x0D: dt = DType::f32; break;
    case 0x0E: dt = DType::f64; break;
    default: LOOM_FAIL(path, ": unsupported IDX element type ", hex(p[2]),
                       " (supported: 0x08 u8, 0x0C i32, 0x0D f32, 0x0E f64)");
  }
  const int ndim = p[3];
  LOOM_CHECK(ndim >= 1, path, ": IDX header declares 0 dimensions");
  const size_t header = 4 + 4 * size_t(ndim);
  LOOM_CHECK(bytes.size() >= header, path, ": IDX file is truncated inside its header (", bytes.size(),
             " bytes, header needs ", header, ")");
  Shape shape;
  // Counted in 128 bits and saturated just past the file size: up to 255 u32 dims would otherwise wrap around
  // (five dims of 2^31 multiply to 0 mod 2^128 and matched an empty data section). A later 0 dim still gives 0.
  const unsigned __int128 cap = (unsigned __int128)bytes.size() + 1;
  unsigned __int128 expect = itemsize(dt);
  for (int d = 0; d < ndim; ++d) {
    shape.push_back(int64_t(be32(p + 4 + 4 * d)));
    expect = std::min<unsigned __int128>(expect * uint64_t(shape.back()), cap);
  }
  const size_t have = bytes.size() - header;
  LOOM_CHECK(expect == have, path, ": IDX header declares shape ", shape, " (",
             expect == cap ? std::string("more") : std::to_string(uint64_t(expect)), " data bytes) but the file holds ",
             have, " data bytes", expect > have ? " (file truncated?)" : "");
  Tensor t = make_tensor(shape, dt);
  copy_be(static_cast<char*>(t.raw_data()), p + header, t.numel(), itemsize(dt));
  return t;
}

std::shared_ptr<ByteImageDataset> load_mnist(const std::string& dir, bool train) {
  const std::string split = train ? "train" : "t10k";
  const std::string ipath = find_file(dir, split, "images-idx3"), lpath = find_file(dir, split, "labels-idx1");
  Tensor images = read_idx(ipath), labels = read_idx(lpath);
  LOOM_CHECK(images.dtype() == DType::u8 && images.dim() == 3 && images.size(1) == 28 && images.size(2) == 28, ipath,
             ": expected u8 images of shape [N, 28, 28], got ", images.dtype(), " ", images.shape());
  LOOM_CHECK(labels.dtype() == DType::u8 && labels.dim() == 1, lpath, ": expected u8 labels of shape [N], got ",
             labels.dtype(), " ", labels.shape());
  LOOM_CHECK(images.size(0) == labels.size(0), ipath, " holds ", images.size(0), " images but ", lpath, " holds ",
             labels.size(0), " labels");
  const uint8_t* l = labels.data<uint8_t>();
  for (int64_t i = 0; i < labels.numel(); ++i)
    LOOM_CHECK(l[i] < 10, lpath, ": label ", int(l[i]), " of sample ", i, " is outside 0..9");
  return std::make_shared<ByteImageDataset>(images.view({images.size(0), 1, 28, 28}), labels.to(DType::i64));
}

std::shared_ptr<ByteImageDataset> load_fashion_mnist(const std::string& dir, bool train) {
  return load_mnist(dir, train);
}

std::vector<std::string> fashion_mnist_classes() {
  return {"T-shirt/top", "Trouser", "Pullover", "Dress", "Coat", "Sandal", "Shirt", "Sneaker", "Bag", "Ankle boot"};
}

std::vector<std::string> mnist_classes() {
  return {"0 - zero", "1 - one", "2 - two", "3 - three", "4 - four",
          "5 - five", "6 - six", "7 - seven", "8 - eight", "9 - nine"};
}

}  // namespace loom::data
