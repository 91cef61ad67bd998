// Samplers: the order in which a DataLoader visits a dataset. An order is a pure function of the epoch,
// so a run can be resumed by asking for the same epoch again.
//   data::RandomSampler s(60000, /*seed=*/7);
//   std::vector<int64_t> order = s.indices(/*epoch=*/2);        // permutation drawn with seed 7 + 2
//   auto batches = data::BatchSampler(std::make_shared<data::RandomSampler>(s), 64, true).batches(2);
#pragma once
#include <cstdint>
#include <memory>
#include <vector>

namespace loom::data {

class Sampler {
 public:
  virtual ~Sampler() = default;
  virtual int64_t size() const = 0;
  virtual std::vector<int64_t> indices(int64_t epoch) const = 0;
};
using SamplerPtr = std::shared_ptr<Sampler>;

// 0, 1, ..., n-1 every epoch.
class SequentialSampler : public Sampler {
 public:
  explicit SequentialSampler(int64_t n);
  int64_t size() const override { return n_; }
  std::vector<int64_t> indices(int64_t epoch) const override;

 private:
  int64_t n_;
};

// A permutation of 0..n-1 drawn from a Generator seeded with seed + epoch.
class RandomSampler : public Sampler {
 public:
  RandomSampler(int64_t n, uint64_t seed);
  int64_t size() const override { return n_; }
  std::vector<int64_t> indices(int64_t epoch) const override;

 private:
  int64_t n_;
  uint64_t seed_;
};

// Groups a sampler's order into batches of batch_size; the last, shorter batch is kept unless drop_last.
class BatchSampler {
 public:
  BatchSampler(SamplerPtr sampler, int64_t batch_size, bool drop_last);
  int64_t num_batches() const;
  std::vector<std::vector<int64_t>> batches(int64_t epoch) const;
  const SamplerPtr& sampler() const { return sampler_; }
  int64_t batch_size() const { return batch_size_; }
  bool drop_last() const { return drop_last_; }

 private:
  SamplerPtr sampler_;
  int64_t batch_size_;
  bool drop_last_;
};

}  // namespace loom::data
