// The sampler of a data-parallel job: rank r of N visits indices perm[r::N] of the epoch's permutation
// (as torch.utils.data.distributed.DistributedSampler), so N ranks with batch b see, step for step, the
// samples one process with batch N*b sees (the union of step k's per-rank batches is its k-th batch).
//   auto s = std::make_shared<data::DistributedSampler>(60000, /*rank=*/1, /*world=*/2, /*seed=*/7);
//   data::DataLoader loader(train, {.batch_size = 32, .sampler = s});   // per-rank batch
#pragma once
#include "loom/data/sampler.h"

namespace loom::data {

struct DistributedSamplerOptions {
  bool shuffle = true;     // the permutation of epoch e is RandomSampler(n, seed)'s, drawn with seed + e
  bool drop_last = false;  // false: pad to a multiple of world by repeating the first indices; true: drop the tail
};

class DistributedSampler : public Sampler {
 public:
  DistributedSampler(int64_t n, int rank, int world_size, uint64_t seed, DistributedSamplerOptions o = {});
  // Samples this rank visits per epoch: ceil(n / world) (padded) or floor(n / world) (drop_last).
  int64_t size() const override { return per_rank_; }
  std::vector<int64_t> indices(int64_t epoch) const override;
  // The whole epoch's order (padded or cut to world * size()), before it is split between ranks.
  std::vector<int64_t> global_indices(int64_t epoch) const;
  int rank() const { return rank_; }
  int world_size() const { return world_; }

 private:
  int64_t n_, per_rank_;
  int rank_, world_;
  uint64_t seed_;
  DistributedSamplerOptions opts_;
};

}  // namespace loom::data
