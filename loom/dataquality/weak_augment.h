// The weak augmentation of image batches (random shift and mirror, see Augmentation in classifier_fit.h) as a
// function of the batch, so training loops that draw their own batches (FixMatch) get the same views as
// AugmentedDataset.
//   Tensor x = dataquality::augment_batch(batch.data, {.max_shift = 2, .hflip = true}, seed, step, ids);
#pragma once
#include <cstdint>
#include <span>

#include "loom/dataquality/classifier_fit.h"

namespace loom::dataquality {

// `batch` (N, C, H, W) augmented as AugmentedDataset does it: sample s draws its shift and flip from
// (seed, epoch, ids[s]), so the same ids and epoch give the same images. Returns a new f32 tensor.
Tensor augment_batch(const Tensor& batch, const Augmentation& a, uint64_t seed, int64_t epoch,
                     std::span<const int64_t> ids);

}  // namespace loom::dataquality
