// DistributedSampler: one seeded permutation per epoch, identical on every rank (same seed, same epoch),
// dealt out round-robin.
#include "loom/data/distributed_sampler.h"

#include <numeric>

#include "loom/core/error.h"

namespace loom::data {

DistributedSampler::DistributedSampler(int64_t n, int rank, int world_size, uint64_t seed,
                                       DistributedSamplerOptions o)
    : n_(n), rank_(rank), world_(world_size), seed_(seed), opts_(o) {
  LOOM_CHECK(n >= 0, "DistributedSampler: size must be non-negative, got ", n);
  LOOM_CHECK(world_size >= 1, "DistributedSampler: world_size must be >= 1, got ", world_size);
  LOOM_CHECK(rank >= 0 && rank < world_size, "DistributedSampler: rank ", rank, " is outside [0, ", world_size, ")");
  per_rank_ = o.drop_last ? n / world_size : (n + world_size - 1) / world_size;
  LOOM_CHECK(!o.drop_last || per_rank_ > 0 || n == 0, "DistributedSampler: drop_last leaves no samples (", n,
             " samples for ", world_size, " ranks)");
}

std::vector<int64_t> DistributedSampler::global_indices(int64_t epoch) const {
  std::vector<int64_t> order;
  if (opts_.shuffle) {
    order = RandomSampler(n_, seed_).indices(epoch);
  } else {
    order.resize(size_t(n_));
    std::iota(order.begin(), order.end(), 0);
  }
  const size_t total = size_t(per_rank_ * world_);
  if (order.size() > total) order.resize(total);  // drop_last
  for (size_t i = 0; order.size() < total; ++i) order.push_back(order[i % size_t(n_)]);  // pad
  return order;
}

std::vector<int64_t> DistributedSampler::indices(int64_t epoch) const {
  const std::vector<int64_t> all = global_indices(epoch);
  std::vector<int64_t> mine;
  mine.reserve(size_t(per_rank_));
  for (size_t i = size_t(rank_); i < all.size(); i += size_t(world_)) mine.push_back(all[i]);
  return mine;
}

}  // namespace loom::data
