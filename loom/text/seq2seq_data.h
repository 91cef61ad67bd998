// Sequence pairs for seq2seq models, batched by similar length and padded with <pad>.
//   auto ds = std::make_shared<text::SequencePairDataset>(src_ids, tgt_ids);   // vectors of id sequences
//   auto sampler = std::make_shared<text::BucketSampler>(ds->lengths(), /*batch_size=*/64, /*seed=*/0);
//   data::DataLoader loader(ds, {.batch_size = 64, .collate = text::pad_collate(), .sampler = sampler});
#pragma once
#include <cstdint>
#include <vector>

#include "loom/data/dataloader.h"
#include "loom/data/sampler.h"
#include "loom/text/word_vocab.h"

namespace loom::text {

// Sample i: data = src[i], target = tgt[i], both i64 (L) with their own lengths.
class SequencePairDataset : public data::Dataset {
 public:
  SequencePairDataset(std::vector<std::vector<int64_t>> src, std::vector<std::vector<int64_t>> tgt);
  int64_t size() const override { return int64_t(src_.size()); }
  data::Example get(int64_t index) const override;
  // max(source length, target length) per sample: what padding a batch costs.
  std::vector<int64_t> lengths() const;
  const std::vector<std::vector<int64_t>>& src() const { return src_; }
  const std::vector<std::vector<int64_t>>& tgt() const { return tgt_; }

 private:
  std::vector<std::vector<int64_t>> src_, tgt_;
};

// Pads 1-D samples to the longest in the batch: data (B, max Ls), target (B, max Lt), filled with pad_id.
data::CollateFn pad_collate(int64_t pad_id = WordVocab::kPad);

// An order in which every run of batch_size consecutive indices holds samples of similar length, so a
// DataLoader with the same batch_size cuts batches that need little padding. Each epoch the indices are
// shuffled (seed + epoch), taken in pools of pool_batches batches, sorted by length inside each pool (ties
// keep the shuffled order) and cut into batches whose order is shuffled again. The one short batch, if any,
// comes last, so the loader's drop_last drops exactly it. shuffle = false sorts everything by length.
struct BucketOptions {
  bool shuffle = true;
  int64_t pool_batches = 50;
};
class BucketSampler : public data::Sampler {
 public:
  BucketSampler(std::vector<int64_t> lengths, int64_t batch_size, uint64_t seed, BucketOptions o = {});
  int64_t size() const override { return int64_t(lengths_.size()); }
  std::vector<int64_t> indices(int64_t epoch) const override;
  std::vector<std::vector<int64_t>> batches(int64_t epoch) const;
  int64_t batch_size() const { return batch_size_; }

 private:
  std::vector<int64_t> lengths_;
  int64_t batch_size_;
  uint64_t seed_;
  BucketOptions opts_;
};

}  // namespace loom::text
