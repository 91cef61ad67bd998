#include "loom/data/sampler.h"

#include <numeric>

#include "loom/core/error.h"
#include "loom/core/generator.h"
#include "loom/ops/creation.h"

namespace loom::data {

SequentialSampler::SequentialSampler(int64_t n) : n_(n) {
  LOOM_CHECK(n >= 0, "SequentialSampler: size must be non-negative, got ", n);
}

std::vector<int64_t> SequentialSampler::indices(int64_t) const {
  std::vector<int64_t> v(static_cast<size_t>(n_));
  std::iota(v.begin(), v.end(), 0);
  return v;
}

RandomSampler::RandomSampler(int64_t n, uint64_t seed) : n_(n), seed_(seed) {
  LOOM_CHECK(n >= 0, "RandomSampler: size must be non-negative, got ", n);
}

std::vector<int64_t> RandomSampler::indices(int64_t epoch) const {
  // A fresh generator per epoch rather than one advancing stream: epoch e's order can then be rebuilt
  // from (seed, e) alone when a run resumes.
  Generator gen(seed_ + uint64_t(epoch));
  Tensor p = randperm(n_, {.dtype = DType::i64}, &gen);
  const int64_t* d = p.data<int64_t>();
  return std::vector<int64_t>(d, d + n_);
}

BatchSampler::BatchSampler(SamplerPtr sampler, int64_t batch_size, bool drop_last)
    : sampler_(std::move(sampler)), batch_size_(batch_size), drop_last_(drop_last) {
  LOOM_CHECK(sampler_ != nullptr, "BatchSampler: the sampler is null");
  LOOM_CHECK(batch_size > 0, "BatchSampler: batch_size must be positive, got ", batch_size);
}

int64_t BatchSampler::num_batches() const {
  const int64_t n = sampler_->size();
  return drop_last_ ? n / batch_size_ : (n + batch_size_ - 1) / batch_size_;
}

std::vector<std::vector<int64_t>> BatchSampler::batches(int64_t epoch) const {
  const std::vector<int64_t> order = sampler_->indices(epoch);
  std::vector<std::vector<int64_t>> out;
  for (size_t i = 0; i < order.size(); i += size_t(batch_size_)) {
    const size_t end = std::min(order.size(), i + size_t(batch_size_));
    if (drop_last_ && end - i < size_t(batch_size_)) break;
    out.emplace_back(order.begin() + std::ptrdiff_t(i), order.begin() + std::ptrdiff_t(end));
  }
  return out;
}

}  // namespace loom::data
