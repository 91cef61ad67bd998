#include "loom/data/image_folder.h"

#include <algorithm>
#include <cctype>
#include <climits>
#include <cstring>
#include <filesystem>
#include <string_view>

#include <stb/stb_image.h>

#include "loom/core/limits.h"
#include "loom/data/file_util.h"
#include "loom/data/jpeg_check.h"
#include "loom/data/jpeg_decode.h"
#include "loom/data/png_check.h"
#include "loom/data/pnm_check.h"

namespace loom::data {

namespace fs = std::filesystem;

namespace {

// The format the first bytes announce, for messages.
std::string image_format(const std::string& b) {
  auto starts = [&](std::string_view sig) { return b.size() >= sig.size() && b.compare(0, sig.size(), sig) == 0; };
  if (starts("\x89PNG\r\n\x1a\n")) return "PNG";
  if (starts("\xff\xd8") || (starts("\xff") && b.find_first_not_of('\xff') != std::string::npos &&
                               b[b.find_first_not_of('\xff')] == '\xd8'))
    return "JPEG";  // stb skips fill 0xFFs before a marker, so FF FF D8 is a JPEG's start too
  if (starts("BM")) return "BMP";
  if (starts("GIF8")) return "GIF";
  if (starts("P5") || starts("P6")) return "PNM";
  if (starts("8BPS")) return "PSD";
  return "unknown";
}

}  // namespace

Tensor decode_image(const std::string& bytes, const std::string& name, int channels) {
  LOOM_CHECK(channels >= 0 && channels <= 4, name, ": channels must be 0..4, got ", channels);
  LOOM_CHECK(!bytes.empty(), name, ": image file is empty");
  LOOM_CHECK(bytes.size() <= size_t(INT_MAX), name, ": image file is too large (", bytes.size(), " bytes)");
  const std::string format = image_format(bytes);
  if (format == "JPEG") {
    check_jpeg_tables(bytes, name);  // a damaged Huffman table named with its offset (jpeg_check.h)
    return decode_jpeg(bytes, name, channels);  // libjpeg-turbo, not stb (jpeg_decode.h says why)
  }
  check_pnm_header(bytes, name);  // header numbers stb_image 2.27 would overflow an int on (pnm_check.h)
  check_png_chunks(bytes, name);  // chunk lengths past the end, which stb 2.27 allocates for (png_check.h)
  const auto* buf = reinterpret_cast<const stbi_uc*>(bytes.data());
  int w = 0, h = 0, c = 0;
  // The header's size is checked before decoding: a 100-byte PNG may declare 20000x20000 (a 1.2 GB decode).
  // stb's own header reader refuses some large PNGs outright ("too large"): read their IHDR here.
  bool have_dims = stbi_info_from_memory(buf, int(bytes.size()), &w, &h, &c) != 0;
  if (!have_dims && format == "PNG" && bytes.size() >= 24 && bytes.compare(12, 4, "IHDR") == 0) {
    auto be32 = [&](size_t at) {
      return uint32_t(uint8_t(bytes[at])) << 24 | uint32_t(uint8_t(bytes[at + 1])) << 16 |
             uint32_t(uint8_t(bytes[at + 2])) << 8 | uint32_t(uint8_t(bytes[at + 3]));
    };
    const uint32_t pw = be32(16), ph = be32(20);
    LOOM_CHECK(pw > 0 && ph > 0 && pw <= uint32_t(INT_MAX) && ph <= uint32_t(INT_MAX), name,
               ": the PNG header declares an invalid size ", pw, "x", ph);
    w = int(pw), h = int(ph), have_dims = true;
  }
  if (have_dims) {
    const int64_t pixels = int64_t(w) * int64_t(h), limit = max_image_pixels();
    LOOM_CHECK(w > 0 && h > 0, name, ": the ", format, " header declares an empty image (", w, "x", h, ")");
    LOOM_CHECK(pixels <= limit, name, ": the ", format, " header declares ", w, "x", h, " = ", pixels,
               " pixels, more than the limit of ", limit, " (set LOOM_MAX_IMAGE_PIXELS to allow larger images)");
    // TGA has no magic bytes (stb tries it last), and stb decodes every declared pixel even when the data is
    // missing: an 18-byte header declaring 5904x4116 took seconds. Even run-length encoded, one packet of
    // 1 + >=1 bytes holds at most 128 pixels, so the data after the header and the image ID bounds the size.
    if (format == "unknown" && bytes.compare(0, 2, "#?") != 0 && bytes.compare(0, 4, "S\x80\xf6\x34") != 0) {
      const int64_t data = std::max<int64_t>(0, int64_t(bytes.size()) - 18 - int64_t(uint8_t(bytes[0])));
      LOOM_CHECK(pixels <= 128 * data, name, ": the TGA header declares ", w, "x", h, " = ", pixels,
                 " pixels but the file holds ", data, " bytes of image data (at most ", 128 * data,
                 " pixels even run-length encoded): the file is truncated or corrupt");
    }
    // 16 bytes a pixel: the u8 RGBA decode plus the float planes a resize works in.
    check_fits_in_memory(double(pixels) * 16.0, name + ": decoding a " + std::to_string(w) + "x" +
                                                         std::to_string(h) + " image");
  }
  // stb reports the failure reason per thread (it is built with thread-local state), so workers may decode
  // concurrently.
  stbi_uc* px = stbi_load_from_memory(buf, int(bytes.size()), &w, &h, &c, channels);
  if (!px) {
    // stb tries every format in turn, so its last reason may belong to another one ("bad png sig" for a JPEG).
    const char* why = stbi_failure_reason();
    if (format == "unknown")
      LOOM_FAIL(name, ": not an image loom can read (expected PNG, JPEG, BMP, GIF, TGA, PPM/PGM; the first bytes "
                "match none of them)");
    LOOM_FAIL(name, ": cannot decode this ", format, " file: it is truncated or corrupt (", bytes.size(), " bytes",
              why && *why ? std::string("; decoder: ") + why : std::string(), ")");
  }
  const int out_c = channels ? channels : c;
  Tensor t;
  try {
    LOOM_CHECK(w > 0 && h > 0 && out_c > 0, name, ": decoded to an empty image (", h, "x", w, "x", out_c, ")");
    t = make_tensor({h, w, out_c}, DType::u8);
    std::memcpy(t.raw_data(), px, size_t(h) * size_t(w) * size_t(out_c));
  } catch (...) {
    stbi_image_free(px);
    throw;
  }
  stbi_image_free(px);
  return t;
}

Tensor read_image(const std::string& path, int channels) { return decode_image(read_file(path), path, channels); }

namespace {

// Image files under `dir` (recursively), ordered as torchvision's make_dataset orders them (sorted os.walk,
// then sorted names): by folder, then by name, so a folder's own files come before its sub-folders' files.
std::vector<std::string> image_files(const fs::path& dir, const std::vector<std::string>& extensions) {
  std::vector<std::pair<std::string, std::string>> found;
  for (const auto& e : fs::recursive_directory_iterator(dir, fs::directory_options::follow_directory_symlink)) {
    if (!e.is_regular_file()) continue;
    std::string ext = e.path().extension().string();
    std::transform(ext.begin(), ext.end(), ext.begin(), [](unsigned char ch) { return char(std::tolower(ch)); });
    if (std::find(extensions.begin(), extensions.end(), ext) != extensions.end())
      found.emplace_back(e.path().parent_path().string(), e.path().filename().string());
  }
  std::sort(found.begin(), found.end());
  std::vector<std::string> out;
  for (const auto& [d, name] : found) out.push_back((fs::path(d) / name).string());
  return out;
}

}  // namespace

ImageFolder::ImageFolder(const std::string& root, ImageFolderOptions o) : root_(root), opts_(std::move(o)) {
  std::error_code ec;
  LOOM_CHECK(fs::is_directory(root, ec), "ImageFolder: ", root, " is not a directory");
  try {
    for (const auto& e : fs::directory_iterator(root))
      if (e.is_directory()) classes_.push_back(e.path().filename().string());
    std::sort(classes_.begin(), classes_.end());
    LOOM_CHECK(!classes_.empty(), "ImageFolder: ", root, " has no class sub-folders");
    std::string exts;
    for (const auto& x : opts_.extensions) exts += (exts.empty() ? "" : " ") + x;
    for (size_t ci = 0; ci < classes_.size(); ++ci) {
      class_to_idx_[classes_[ci]] = int64_t(ci);
      const fs::path dir = fs::path(root) / classes_[ci];
      std::vector<std::string> files = image_files(dir, opts_.extensions);
      LOOM_CHECK(!files.empty(), "ImageFolder: class folder ", dir.string(), " holds no image files (", exts, ")");
      for (auto& f : files) samples_.emplace_back(std::move(f), int64_t(ci));
    }
  } catch (const fs::filesystem_error& e) {
    LOOM_FAIL("ImageFolder: cannot list ", root, " (", e.what(), ")");
  }
}

Example ImageFolder::get(int64_t index) const {
  LOOM_CHECK(index >= 0 && index < size(), "ImageFolder: index ", index, " is out of range for ", size(), " images");
  const auto& [path, label] = samples_[size_t(index)];
  Tensor target = make_tensor({}, DType::i64);
  *target.data<int64_t>() = label;
  return {read_image(path, opts_.channels), target};
}

}  // namespace loom::data
