// The strong augmentation of consistency training (FixMatch): a RandAugment-like pick of `ops` random image
// operations at random strengths, then a cutout square, applied to small images (28x28 grey, 32x32 RGB).
//   dataquality::StrongAugmentation s{.ops = 2, .black = {-0.42}, .white = {2.02}};   // normalised pixel range
//   Tensor strong = dataquality::strong_augment(weak_batch, s, seed, step, ids);        // (N, C, H, W) f32
#pragma once
#include <cstdint>
#include <span>
#include <vector>

#include "loom/core/tensor.h"

namespace loom::dataquality {

struct StrongAugmentation {
  int64_t ops = 2;          // random operations per image, each drawn from the list in strong_augment.cpp
  int64_t max_shift = 4;    // the translate operation: up to this many pixels in each direction
  double cutout = 0.5;      // side of the cut-out square as a fraction of the image's smaller side (0: none)
  // The values a black and a white pixel have in the batch (per channel, or one for all): the data are
  // normalised, so brightness, contrast, noise and the rest work between these and the result stays inside.
  std::vector<double> black = {0.0};
  std::vector<double> white = {1.0};
};

// A strongly augmented copy of `batch` (N, C, H, W): image s draws its operations from (seed, epoch, ids[s]), so
// a run is reproducible. Every value of the result lies between the channel's black and white values.
Tensor strong_augment(const Tensor& batch, const StrongAugmentation& a, uint64_t seed, int64_t epoch,
                      std::span<const int64_t> ids);

}  // namespace loom::dataquality
