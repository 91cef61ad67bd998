#include "loom/text/seq2seq_data.h"

#include <algorithm>
#include <numeric>

#include "loom/core/error.h"
#include "loom/core/generator.h"

namespace loom::text {

SequencePairDataset::SequencePairDataset(std::vector<std::vector<int64_t>> src, std::vector<std::vector<int64_t>> tgt)
    : src_(std::move(src)), tgt_(std::move(tgt)) {
  LOOM_CHECK(src_.size() == tgt_.size(), "SequencePairDataset: ", src_.size(), " sources but ", tgt_.size(),
             " targets");
}

namespace {

Tensor to_tensor(const std::vector<int64_t>& v) {
  Tensor t = make_tensor({int64_t(v.size())}, DType::i64);
  std::copy(v.begin(), v.end(), t.data<int64_t>());
  return t;
}

// Fisher-Yates with the generator's raw draws: the order depends only on the seed.
template <class T>
void shuffle(std::vector<T>& v, Generator& gen) {
  for (size_t i = v.size(); i > 1; --i) std::swap(v[i - 1], v[gen.next_u64() % i]);
}

}  // namespace

data::Example SequencePairDataset::get(int64_t index) const {
  LOOM_CHECK(index >= 0 && index < size(), "SequencePairDataset: index ", index, " is out of range for ", size(),
             " pairs");
  return {to_tensor(src_[size_t(index)]), to_tensor(tgt_[size_t(index)])};
}

std::vector<int64_t> SequencePairDataset::lengths() const {
  std::vector<int64_t> out(src_.size());
  for (size_t i = 0; i < src_.size(); ++i) out[i] = int64_t(std::max(src_[i].size(), tgt_[i].size()));
  return out;
}

data::CollateFn pad_collate(int64_t pad_id) {
  return [pad_id](const std::vector<data::Example>& ex) {
    LOOM_CHECK(!ex.empty(), "pad_collate: cannot make a batch of zero samples");
    auto pad = [&](bool target) {
      int64_t L = 0;
      for (size_t i = 0; i < ex.size(); ++i) {
        const Tensor& t = target ? ex[i].target : ex[i].data;
        LOOM_CHECK(t.defined() && t.dim() == 1 && t.dtype() == DType::i64, "pad_collate: the ",
                   target ? "target" : "data", " of sample ", i, " must be a 1-D i64 tensor");
        L = std::max(L, t.size(0));
      }
      Tensor out = make_tensor({int64_t(ex.size()), L}, DType::i64);
      int64_t* p = out.data<int64_t>();
      std::fill(p, p + out.numel(), pad_id);
      for (size_t i = 0; i < ex.size(); ++i) {
        const Tensor t = (target ? ex[i].target : ex[i].data).contiguous();
        std::copy(t.data<int64_t>(), t.data<int64_t>() + t.numel(), p + int64_t(i) * L);
      }
      return out;
    };
    return data::Batch{pad(false), pad(true)};
  };
}

BucketSampler::BucketSampler(std::vector<int64_t> lengths, int64_t batch_size, uint64_t seed, BucketOptions o)
    : lengths_(std::move(lengths)), batch_size_(batch_size), seed_(seed), opts_(o) {
  LOOM_CHECK(batch_size > 0, "BucketSampler: batch_size must be positive, got ", batch_size);
  LOOM_CHECK(o.pool_batches > 0, "BucketSampler: pool_batches must be positive, got ", o.pool_batches);
}

std::vector<std::vector<int64_t>> BucketSampler::batches(int64_t epoch) const {
  const size_t n = lengths_.size(), B = size_t(batch_size_);
  std::vector<int64_t> order(n);
  std::iota(order.begin(), order.end(), 0);
  Generator gen(seed_ + uint64_t(epoch));
  if (opts_.shuffle) shuffle(order, gen);
  const size_t pool = opts_.shuffle ? B * size_t(opts_.pool_batches) : std::max<size_t>(n, 1);
  auto by_length = [&](int64_t a, int64_t b) { return lengths_[size_t(a)] < lengths_[size_t(b)]; };
  for (size_t i = 0; i < n; i += pool)
    std::stable_sort(order.begin() + std::ptrdiff_t(i), order.begin() + std::ptrdiff_t(std::min(n, i + pool)),
                     by_length);
  std::vector<std::vector<int64_t>> out;
  for (size_t i = 0; i + B <= n; i += B)
    out.emplace_back(order.begin() + std::ptrdiff_t(i), order.begin() + std::ptrdiff_t(i + B));
  if (opts_.shuffle) shuffle(out, gen);
  if (n % B) out.emplace_back(order.end() - std::ptrdiff_t(n % B), order.end());
  return out;
}

std::vector<int64_t> BucketSampler::indices(int64_t epoch) const {
  std::vector<int64_t> flat;
  flat.reserve(lengths_.size());
  for (const auto& b : batches(epoch)) flat.insert(flat.end(), b.begin(), b.end());
  return flat;
}

}  // namespace loom::text
