#include "loom/text/lm_dataset.h"

#include <limits>

#include "loom/core/error.h"

namespace loom::text {

LanguageModelDataset::LanguageModelDataset(std::vector<int32_t> tokens, int64_t context, uint64_t seed)
    : tokens_(std::move(tokens)), context_(context), gen_(seed) {
  LOOM_CHECK(context > 0, "LanguageModelDataset: context must be positive, got ", context);
  LOOM_CHECK(int64_t(tokens_.size()) > context, "LanguageModelDataset: ", tokens_.size(),
             " tokens are too few for a context of ", context, " (a block needs context + 1 tokens)");
}

data::Example LanguageModelDataset::get(int64_t start) const {
  const int64_t one[] = {start};
  data::Batch b = get_batch(std::span<const int64_t>(one));
  return {b.data[0], b.target[0]};
}

data::Batch LanguageModelDataset::get_batch(std::span<const int64_t> starts) const {
  const int64_t B = int64_t(starts.size()), T = context_;
  Tensor x = make_tensor({B, T}, DType::i64), y = make_tensor({B, T}, DType::i64);
  int64_t* px = x.data<int64_t>();
  int64_t* py = y.data<int64_t>();
  for (int64_t b = 0; b < B; ++b) {
    const int64_t s = starts[size_t(b)];
    LOOM_CHECK(s >= 0 && s < size(), "LanguageModelDataset: block start ", s, " is out of range for ", size(),
               " blocks");
    const int32_t* src = tokens_.data() + s;
    for (int64_t t = 0; t < T; ++t) {
      px[b * T + t] = src[t];
      py[b * T + t] = src[t + 1];
    }
  }
  return {x, y};
}

std::vector<int64_t> LanguageModelDataset::sample_starts(int64_t batch_size) {
  LOOM_CHECK(batch_size > 0, "LanguageModelDataset::get_batch: batch size must be positive, got ", batch_size);
  std::vector<int64_t> starts(static_cast<size_t>(batch_size));
  const auto n = uint64_t(size());
  // Rejection keeps the draw exactly uniform (a plain modulo favours small starts when n does not divide 2^64).
  const uint64_t limit = std::numeric_limits<uint64_t>::max() - std::numeric_limits<uint64_t>::max() % n;
  for (auto& s : starts) {
    uint64_t r;
    do r = gen_.next_u64();
    while (r >= limit);
    s = int64_t(r % n);
  }
  return starts;
}

data::Batch LanguageModelDataset::get_batch(int64_t batch_size) {
  const std::vector<int64_t> starts = sample_starts(batch_size);
  return get_batch(std::span<const int64_t>(starts));
}

LMData make_lm_data(const std::vector<int64_t>& tokens, int64_t context, uint64_t seed, double val_fraction) {
  LOOM_CHECK(val_fraction > 0 && val_fraction < 1, "make_lm_data: val_fraction must be in (0, 1), got ",
             val_fraction);
  const auto n = int64_t(tokens.size());
  const auto n_train = int64_t(double(n) * (1.0 - val_fraction));
  LOOM_CHECK(n_train > context && n - n_train > context, "make_lm_data: ", n, " tokens split into ", n_train,
             " for training and ", n - n_train, " for validation; each part must be longer than the context (",
             context, ")");
  auto narrow = [&](int64_t lo, int64_t hi) {
    std::vector<int32_t> out;
    out.reserve(size_t(hi - lo));
    for (int64_t i = lo; i < hi; ++i) {
      LOOM_CHECK(tokens[size_t(i)] >= 0 && tokens[size_t(i)] <= std::numeric_limits<int32_t>::max(),
                 "make_lm_data: token ", i, " has id ", tokens[size_t(i)], ", outside [0, 2^31)");
      out.push_back(int32_t(tokens[size_t(i)]));
    }
    return out;
  };
  return {std::make_shared<LanguageModelDataset>(narrow(0, n_train), context, seed),
          std::make_shared<LanguageModelDataset>(narrow(n_train, n), context, seed + 1)};
}

}  // namespace loom::text
