// Language-model data over a token stream: blocks of `context` tokens x and the same block shifted by one y.
//   auto [train, val] = text::make_lm_data(tok->encode(corpus), /*context=*/128, /*seed=*/0);
//   auto [x, y] = train->get_batch(16);                 // i64 (16, 128) each; y[b][t] = x[b][t + 1]
//   data::DataLoader loader(train, {.batch_size = 16, .shuffle = true});   // or as a plain Dataset
#pragma once
#include <cstdint>
#include <memory>
#include <vector>

#include "loom/core/generator.h"
#include "loom/data/dataset.h"

namespace loom::text {

class LanguageModelDataset : public data::Dataset {
 public:
  // Sample i is the block starting at token i, so there are tokens.size() - context samples.
  LanguageModelDataset(std::vector<int32_t> tokens, int64_t context, uint64_t seed = 0);

  int64_t size() const override { return int64_t(tokens_.size()) - context_; }
  data::Example get(int64_t start) const override;  // x, y: i64 (T)
  using data::Dataset::get_batch;
  data::Batch get_batch(std::span<const int64_t> starts) const override;  // x, y: i64 (B, T)
  // B blocks at starts drawn uniformly from this dataset's generator (nanoGPT's get_batch): the same seed
  // gives the same sequence of batches. Not safe to call from several threads at once.
  data::Batch get_batch(int64_t batch_size);
  // The starts get_batch(B) would use next (and advances the generator as it would).
  std::vector<int64_t> sample_starts(int64_t batch_size);

  Generator& generator() { return gen_; }  // its state goes into checkpoints to resume the stream
  int64_t context() const { return context_; }
  int64_t num_tokens() const { return int64_t(tokens_.size()); }
  const std::vector<int32_t>& tokens() const { return tokens_; }

 private:
  std::vector<int32_t> tokens_;
  int64_t context_;
  Generator gen_;
};

struct LMData {
  std::shared_ptr<LanguageModelDataset> train, val;
};
// The first int(n * (1 - val_fraction)) tokens train and the rest validate (Python's int(0.9 * len(data))
// for the default), so no block crosses the boundary. Validation draws from its own generator (seed + 1).
// Throws loom::Error when either part is not longer than the context.
LMData make_lm_data(const std::vector<int64_t>& tokens, int64_t context, uint64_t seed = 0,
                    double val_fraction = 0.1);

}  // namespace loom::text
