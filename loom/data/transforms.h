// Image transforms, like torchvision.transforms on tensors. Each is a callable (x, Generator&) -> Tensor,
// so they compose with Compose and plug into data::transformed(dataset, fn, {.seed}).
//   data::Compose t({data::ToTensor(), data::RandomCrop(32, 4), data::RandomHorizontalFlip(0.5),
//                    data::Normalize({0.49, 0.48, 0.45}, {0.25, 0.24, 0.26})});
//   Tensor x = t(image_u8_hwc, gen);   // f32 (3, 32, 32)
// Geometry transforms act on the last two dims (..., H, W) of any dtype; Resize also takes a decoded u8 image
// (H, W, C) as torchvision takes PIL images, the crops and flips refuse one (ToTensor first); Normalize acts on
// (..., C, H, W) floats.
#pragma once
#include <cstdint>
#include <vector>

#include "loom/core/generator.h"
#include "loom/core/tensor.h"
#include "loom/data/dataset.h"

namespace loom::data {

// Runs transforms in order, all drawing from the same generator.
class Compose {
 public:
  explicit Compose(std::vector<TransformFn> transforms) : ts_(std::move(transforms)) {}
  Tensor operator()(const Tensor& x, Generator& gen) const;
  Tensor operator()(const Tensor& x) const { return (*this)(x, default_generator()); }

 private:
  std::vector<TransformFn> ts_;
};

// u8 image (H, W, C) or (H, W) -> f32 (C, H, W) with values v / 255.
struct ToTensor {
  Tensor operator()(const Tensor& x, Generator&) const { return (*this)(x); }
  Tensor operator()(const Tensor& x) const;
};

// (x - mean[c]) / std[c] per channel c (dim -3); a single value applies to every channel.
class Normalize {
 public:
  Normalize(std::vector<double> mean, std::vector<double> std);
  Tensor operator()(const Tensor& x, Generator&) const { return (*this)(x); }
  Tensor operator()(const Tensor& x) const;

 private:
  std::vector<double> mean_, std_;
};

// Bilinear resize. On a decoded u8 image (H, W, C) (C <= 4, H > 4), as torchvision's Resize on a PIL image:
// antialiased, u8 (H', W', C) out, so it may come before ToTensor as in the usual pipeline
// Compose({Resize(32, 32), ToTensor()}). On tensors (..., H, W), as torchvision's Resize on tensors without
// antialiasing (interpolate, align_corners=False); u8 tensors are resized in float and rounded back to u8.
// Resize(h, w) gives exactly (h, w); Resize(s) scales the shorter side to s and keeps the aspect ratio.
class Resize {
 public:
  explicit Resize(int64_t size) : h_(size), w_(-1) {}
  Resize(int64_t height, int64_t width) : h_(height), w_(width) {}
  Tensor operator()(const Tensor& x, Generator&) const { return (*this)(x); }
  Tensor operator()(const Tensor& x) const;

 private:
  int64_t h_, w_;  // w_ < 0: h_ is the shorter side's target
};

// The central (h, w) window (torchvision's rounding); zero padding where the image is smaller.
class CenterCrop {
 public:
  explicit CenterCrop(int64_t size) : h_(size), w_(size) {}
  CenterCrop(int64_t height, int64_t width) : h_(height), w_(width) {}
  Tensor operator()(const Tensor& x, Generator&) const { return (*this)(x); }
  Tensor operator()(const Tensor& x) const;

 private:
  int64_t h_, w_;
};

// Pads every side by `padding` (constant fill), then takes an (h, w) window at a random position.
struct RandomCropOptions {
  int64_t padding = 0;
  bool pad_if_needed = false;  // pad left/right and top/bottom when the image is smaller than the crop
  double fill = 0;
};
class RandomCrop {
 public:
  explicit RandomCrop(int64_t size, int64_t padding = 0) : RandomCrop(size, size, {.padding = padding}) {}
  RandomCrop(int64_t height, int64_t width, RandomCropOptions o) : h_(height), w_(width), o_(o) {}
  Tensor operator()(const Tensor& x, Generator& gen) const;
  Tensor operator()(const Tensor& x) const { return (*this)(x, default_generator()); }

 private:
  int64_t h_, w_;
  RandomCropOptions o_;
};

// Mirrors the last dim with probability p.
class RandomHorizontalFlip {
 public:
  explicit RandomHorizontalFlip(double p = 0.5) : p_(p) {}
  Tensor operator()(const Tensor& x, Generator& gen) const;
  Tensor operator()(const Tensor& x) const { return (*this)(x, default_generator()); }

 private:
  double p_;
};

// Building blocks, public for callers that pick positions themselves.
// The (h, w) window whose top-left corner is (top, left) in x's last two dims; positions outside x get `fill`.
Tensor crop(const Tensor& x, int64_t top, int64_t left, int64_t h, int64_t w, double fill = 0);
Tensor hflip(const Tensor& x);
Tensor resize_bilinear(const Tensor& x, int64_t h, int64_t w);
// Antialiased bilinear (interpolate(..., mode='bilinear', antialias=True)) of float tensors (..., H, W).
Tensor resize_bilinear_antialias(const Tensor& x, int64_t h, int64_t w);
// Antialiased resize of a u8 image (H, W, C), 1..4 channels, to (h, w, C): what Resize does to decoded images.
Tensor resize_image(const Tensor& img, int64_t h, int64_t w);

}  // namespace loom::data
