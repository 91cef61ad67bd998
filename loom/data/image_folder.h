// Image files (PNG, JPEG, BMP, ...) decoded with stb_image, and ImageFolder: one sub-folder per class, class
// indices in sorted name order, as torchvision's ImageFolder.
//   auto ds = std::make_shared<data::ImageFolder>("/data/pets/train");          // data: u8 (H, W, 3)
//   auto t = data::transformed(ds, data::Compose({data::ToTensor(), data::Resize(64, 64)}));  // (3, 64, 64)
//   Tensor img = data::read_image("cat.png", 3);   // u8 (H, W, 3)
#pragma once
#include <map>
#include <string>
#include <utility>
#include <vector>

#include "loom/core/tensor.h"
#include "loom/data/dataset.h"

namespace loom::data {

// Decodes an image file to u8 (H, W, C). channels = 0 keeps the file's own channel count; 1..4 converts
// (1 grey, 3 RGB, 4 RGBA). A missing, truncated or undecodable file throws naming it.
Tensor read_image(const std::string& path, int channels = 3);
Tensor decode_image(const std::string& bytes, const std::string& name, int channels = 3);

struct ImageFolderOptions {
  int channels = 3;  // torchvision's default loader converts to RGB
  // Lower-case file extensions that count as images (files with others are skipped, as torchvision does).
  std::vector<std::string> extensions = {".png", ".jpg", ".jpeg", ".bmp", ".tga", ".gif", ".ppm", ".pgm"};
};

// Samples: (path, class index); get(i) decodes the file, so each epoch reads from disk (workers overlap it).
class ImageFolder : public Dataset {
 public:
  explicit ImageFolder(const std::string& root, ImageFolderOptions o = {});
  int64_t size() const override { return int64_t(samples_.size()); }
  Example get(int64_t index) const override;
  const std::vector<std::string>& classes() const { return classes_; }
  const std::map<std::string, int64_t>& class_to_idx() const { return class_to_idx_; }
  const std::vector<std::pair<std::string, int64_t>>& samples() const { return samples_; }

 private:
  std::string root_;
  ImageFolderOptions opts_;
  std::vector<std::string> classes_;
  std::map<std::string, int64_t> class_to_idx_;
  std::vector<std::pair<std::string, int64_t>> samples_;
};

}  // namespace loom::data
