// DataLoader: batches from a dataset, optionally shuffled and computed ahead by worker threads.
//   data::DataLoader loader(train, {.batch_size = 64, .shuffle = true, .num_workers = 2, .seed = 0});
//   for (int e = 0; e < 5; ++e) for (auto& [x, y] : loader) { ... }   // each pass is the next epoch
//   loader.set_epoch(3); loader.begin_at(120);  // resume: the next pass is epoch 3 from its batch 120
// Batch order and content are fixed by the sampler (seed + epoch) and the per-sample transform seeds;
// workers only compute, so any num_workers gives bit-identical batches.
#pragma once
#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <vector>

#include "loom/data/dataset.h"
#include "loom/data/sampler.h"

namespace loom::data {

using CollateFn = std::function<Batch(const std::vector<Example>&)>;

struct LoaderOptions {
  int64_t batch_size = 1;
  bool shuffle = false;
  bool drop_last = false;
  int num_workers = 0;   // 0: batches are made on the calling thread
  int prefetch = 2;      // batches each worker may have ready ahead of the consumer
  uint64_t seed = 0;     // the shuffle of epoch e uses seed + e
  CollateFn collate = nullptr;   // default: Dataset::get_batch (stacking)
  SamplerPtr sampler = nullptr;  // overrides shuffle
};

class Prefetcher;

class DataLoader {
 public:
  DataLoader(DatasetPtr dataset, LoaderOptions o = {});
  // A stream: batches are cut in read order; shuffle and samplers do not apply, and at most one worker
  // reads ahead (a stream cannot be split between threads without changing its order).
  DataLoader(IterableDatasetPtr dataset, LoaderOptions o = {});
  ~DataLoader();
  DataLoader(const DataLoader&) = delete;
  DataLoader& operator=(const DataLoader&) = delete;

  class Iterator {
   public:
    using difference_type = std::ptrdiff_t;
    using value_type = Batch;
    Batch& operator*() { return *cur_; }
    Batch* operator->() { return &*cur_; }
    Iterator& operator++();
    bool operator==(const Iterator& o) const { return done() == o.done(); }

   private:
    friend class DataLoader;
    bool done() const { return !cur_.has_value(); }
    DataLoader* loader_ = nullptr;
    std::optional<Batch> cur_;
  };

  // Starts the next epoch (see set_epoch / begin_at). Starting a pass abandons any unfinished one.
  Iterator begin();
  Iterator end() { return Iterator(); }

  void set_epoch(int64_t epoch);      // the next begin() runs this epoch
  void begin_at(int64_t batch_index); // the next begin() starts at this batch of its epoch (once)
  int64_t epoch() const { return epoch_; }          // the epoch of the current or last pass
  int64_t next_epoch() const { return next_epoch_; }
  int64_t batch_index() const { return batch_index_; }  // the epoch's index of the batch last handed out
  int64_t num_batches() const;        // per epoch; -1 for a stream
  std::vector<int64_t> epoch_order(int64_t epoch) const;  // the sample indices epoch visits, in order
  // The sample indices of the batch last handed out, for state kept per sample beside the data (cached teacher
  // logits, train/distill.h). Throws for a stream, whose samples have no index, and before the first batch.
  const std::vector<int64_t>& batch_indices() const;
  const LoaderOptions& options() const { return opts_; }

 private:
  std::optional<Batch> fetch(int64_t k);

  DatasetPtr dataset_;
  IterableDatasetPtr stream_;
  LoaderOptions opts_;
  std::unique_ptr<BatchSampler> batcher_;
  std::vector<std::vector<int64_t>> batches_;  // the current epoch's batches
  int64_t epoch_ = -1, next_epoch_ = 0, start_at_ = 0, batch_index_ = 0;
  std::unique_ptr<Prefetcher> run_;
};

}  // namespace loom::data
