// The small training loop the data-quality tools share: a fresh classifier trained with the library's Trainer
// (Adam, cross-entropy) on some samples, then its softmax probabilities on others.
//   dataquality::ClassifierTraining t{.epochs = 2, .batch_size = 64, .seed = 1};
//   auto model = factory();  dataquality::fit_classifier(*model, train_subset, t);
//   Tensor p = dataquality::predict_probs(*model, held_out);     // f32 (N, K), rows sum to 1
#pragma once
#include <cstdint>
#include <functional>
#include <memory>
#include <vector>

#include "loom/data/dataset.h"
#include "loom/nn/module.h"
#include "loom/train/progress.h"

namespace loom::dataquality {

// Builds a freshly initialised model (each fold or round gets its own).
using ModelFactory = std::function<std::shared_ptr<nn::Module>()>;

// Random augmentation of image batches (N, C, H, W) while training: each sample shifted by up to max_shift
// pixels in each direction (what RandomCrop(size, padding = max_shift) does; uncovered pixels take `fill`, one
// value per channel or one for all, e.g. the normalised value of black) and, with hflip, mirrored with p = 0.5.
// Seeded per (seed, epoch, sample), so a run is reproducible.
struct Augmentation {
  int64_t max_shift = 0;
  bool hflip = false;
  std::vector<double> fill = {};  // empty: 0
  bool enabled() const { return max_shift > 0 || hflip; }
};

struct ClassifierTraining {
  int64_t epochs = 1;
  int64_t min_steps = 0;  // > 0: train at least this many optimizer steps (small training sets need more passes)
  int64_t batch_size = 64;
  double lr = 1e-3;
  uint64_t seed = 0;  // shuffling (initialisation comes from the factory / default generator)
  Augmentation augment = {};
  train::ProgressMode progress = train::ProgressMode::None;
};

void fit_classifier(nn::Module& model, data::DatasetPtr train, const ClassifierTraining& t);
// Softmax of the model's outputs over every sample, in order: f32 (N, K).
Tensor predict_probs(nn::Module& model, data::DatasetPtr ds, int64_t batch_size = 256);
// Accuracy of argmax(model(x)) against the dataset's own targets.
double accuracy(nn::Module& model, data::DatasetPtr ds, int64_t batch_size = 256);

// The i64 class targets of every sample of a dataset, read in batches.
std::vector<int64_t> dataset_labels(const data::DatasetPtr& ds);

// `base` with its image batches augmented (see Augmentation); get() and get_batch() agree for a given epoch.
class AugmentedDataset : public data::Dataset {
 public:
  AugmentedDataset(data::DatasetPtr base, Augmentation a, uint64_t seed);
  int64_t size() const override { return base_->size(); }
  data::Example get(int64_t i) const override;
  data::Batch get_batch(std::span<const int64_t> idx) const override;
  void set_epoch(int64_t e) override { epoch_ = e, base_->set_epoch(e); }

 private:
  data::DatasetPtr base_;
  Augmentation a_;
  uint64_t seed_;
  int64_t epoch_ = 0;
};

// The samples of `base` with their targets replaced: sample i is base[indices[i]] labelled labels[i].
class RelabelledDataset : public data::Dataset {
 public:
  RelabelledDataset(data::DatasetPtr base, std::vector<int64_t> indices, std::vector<int64_t> labels);
  int64_t size() const override { return int64_t(indices_.size()); }
  data::Example get(int64_t i) const override;
  data::Batch get_batch(std::span<const int64_t> idx) const override;
  void set_epoch(int64_t e) override { base_->set_epoch(e); }

 private:
  data::DatasetPtr base_;
  std::vector<int64_t> indices_, labels_;
};

}  // namespace loom::dataquality
