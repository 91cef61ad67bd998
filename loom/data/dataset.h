// Datasets, like torch.utils.data: random access (Dataset) or streams (IterableDataset), and the wrappers
// that split, join and augment them.
//   auto ds = std::make_shared<data::TensorDataset>(x, y);              // x: (N, ...), y: (N, ...)
//   auto parts = data::random_split(ds, {800, 200}, gen);            // parts[0], parts[1]: Subsets
//   Example e = parts[0]->get(3);                                     // e.data, e.target
#pragma once
#include <atomic>
#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <span>
#include <vector>

#include "loom/core/generator.h"
#include "loom/core/tensor.h"

namespace loom::data {

// One sample (or, once collated, one batch): input and target. The target may be undefined (unlabelled data).
struct Example {
  Tensor data;
  Tensor target;
};
using Batch = Example;

// Random-access dataset. get() must be safe to call from several threads at once (DataLoader workers).
class Dataset {
 public:
  virtual ~Dataset() = default;
  virtual int64_t size() const = 0;
  virtual Example get(int64_t index) const = 0;
  // Fetches and collates several samples at once (PyTorch's __getitems__). In-memory datasets override it
  // to gather rows in one pass; the default calls get() for each index and stacks.
  virtual Batch get_batch(std::span<const int64_t> indices) const;
  // Called by the DataLoader before each epoch so per-sample random transforms can differ between epochs
  // while staying a pure function of (seed, epoch, index). Wrappers forward it to what they wrap.
  virtual void set_epoch(int64_t /*epoch*/) {}
};
using DatasetPtr = std::shared_ptr<Dataset>;

// A dataset read front to back (text streams, generators). start() begins a pass; next() returns
// std::nullopt at the end of it.
class IterableDataset {
 public:
  virtual ~IterableDataset() = default;
  virtual void start(int64_t epoch) = 0;
  virtual std::optional<Example> next() = 0;
};
using IterableDatasetPtr = std::shared_ptr<IterableDataset>;

// Stacks samples into a batch: data (B, ...), target (B, ...). Samples must agree in shape and dtype;
// the error names the first sample that does not.
Batch default_collate(const std::vector<Example>& examples);

// Rows of tensors that share their first dimension. get(i) returns views of row i.
class TensorDataset : public Dataset {
 public:
  TensorDataset(Tensor data, Tensor target = {});
  int64_t size() const override { return data_.size(0); }
  Example get(int64_t index) const override;
  Batch get_batch(std::span<const int64_t> indices) const override;
  const Tensor& data() const { return data_; }
  const Tensor& target() const { return target_; }

 private:
  Tensor data_, target_;
};

// u8 images (N, C, H, W) kept as bytes and handed out as f32 in [0, 1] (what ToTensor gives), so that a
// dataset like CIFAR-10 takes a quarter of the memory of a float copy.
class ByteImageDataset : public Dataset {
 public:
  ByteImageDataset(Tensor images, Tensor labels);
  int64_t size() const override { return images_.size(0); }
  Example get(int64_t index) const override;
  Batch get_batch(std::span<const int64_t> indices) const override;
  const Tensor& images() const { return images_; }  // u8 (N, C, H, W)
  const Tensor& labels() const { return labels_; }  // i64 (N)

 private:
  Tensor images_, labels_;
};

// The samples of `base` at `indices`, in that order.
class Subset : public Dataset {
 public:
  Subset(DatasetPtr base, std::vector<int64_t> indices);
  int64_t size() const override { return int64_t(indices_.size()); }
  Example get(int64_t index) const override;
  Batch get_batch(std::span<const int64_t> indices) const override;
  void set_epoch(int64_t epoch) override { base_->set_epoch(epoch); }
  const std::vector<int64_t>& indices() const { return indices_; }
  const DatasetPtr& base() const { return base_; }

 private:
  DatasetPtr base_;
  std::vector<int64_t> indices_;
};

// Datasets one after the other.
class ConcatDataset : public Dataset {
 public:
  explicit ConcatDataset(std::vector<DatasetPtr> parts);
  int64_t size() const override { return offsets_.back(); }
  Example get(int64_t index) const override;
  void set_epoch(int64_t epoch) override;

 private:
  std::vector<DatasetPtr> parts_;
  std::vector<int64_t> offsets_;  // offsets_[i] = first index of parts_[i]; last entry = total size
};

// Splits into non-overlapping random subsets of the given lengths (which must sum to the dataset's size).
std::vector<std::shared_ptr<Subset>> random_split(DatasetPtr dataset, const std::vector<int64_t>& lengths,
                                                  Generator& gen);

// A per-sample transform. Random transforms draw from `gen`; deterministic ones ignore it.
using TransformFn = std::function<Tensor(const Tensor&, Generator&)>;

// Applies transforms to a dataset's samples. Each sample gets its own generator seeded from
// (seed, epoch, index), so augmentations are reproducible and do not depend on which worker runs them.
struct TransformOptions {
  uint64_t seed = 0;
  TransformFn target_transform = nullptr;
};
class TransformDataset : public Dataset {
 public:
  TransformDataset(DatasetPtr base, TransformFn transform, TransformOptions o = {});
  int64_t size() const override { return base_->size(); }
  Example get(int64_t index) const override;
  void set_epoch(int64_t epoch) override;

 private:
  DatasetPtr base_;
  TransformFn transform_;
  TransformOptions opts_;
  std::atomic<int64_t> epoch_{0};
};
inline std::shared_ptr<TransformDataset> transformed(DatasetPtr base, TransformFn t, TransformOptions o = {}) {
  return std::make_shared<TransformDataset>(std::move(base), std::move(t), std::move(o));
}

// The seed of sample `index` in `epoch` (splitmix64 mixing, so neighbouring indices get unrelated streams).
uint64_t sample_seed(uint64_t base, int64_t epoch, int64_t index);

}  // namespace loom::data
