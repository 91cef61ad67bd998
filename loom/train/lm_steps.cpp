#include "loom/train/lm_steps.h"

#include <algorithm>
#include <vector>

#include "loom/autograd/grad_mode.h"
#include "loom/core/error.h"
#include "loom/nn/loss.h"

namespace loom::train {

Tensor lm_cross_entropy(const Tensor& logits, const Tensor& targets) {
  const int64_t V = logits.size(-1);
  return cross_entropy(logits.reshape({-1, V}), targets.reshape({-1}));
}

Tensor lm_loss(models::LanguageModel& model, const Tensor& x, const Tensor& y) { return lm_cross_entropy(model(x), y); }

double evaluate_lm(models::LanguageModel& model, const text::LanguageModelDataset& ds, int64_t batch_size,
                   int64_t max_tokens) {
  LOOM_CHECK(batch_size >= 1, "evaluate_lm: batch_size must be >= 1, got ", batch_size);
  const int64_t T = ds.context();
  int64_t blocks = (ds.size() + T - 1) / T;  // starts 0, T, ... < size()
  if (max_tokens > 0) blocks = std::min(blocks, std::max<int64_t>(1, max_tokens / T));
  LOOM_CHECK(blocks > 0, "evaluate_lm: the validation split is shorter than one block of ", T, " tokens");
  const bool was_training = model.is_training();
  model.eval();
  NoGradGuard ng;
  double sum = 0;
  for (int64_t b0 = 0; b0 < blocks; b0 += batch_size) {
    std::vector<int64_t> starts;
    for (int64_t b = b0; b < std::min(blocks, b0 + batch_size); ++b) starts.push_back(b * T);
    data::Batch batch = ds.get_batch(starts);
    sum += lm_loss(model, batch.data, batch.target).item() * double(starts.size());
  }
  model.train(was_training);
  return sum / double(blocks);
}

BatchSource lm_batches(const text::LMData& data, int64_t batch_size) {
  LOOM_CHECK(data.train != nullptr, "lm_batches: the data has no training split");
  LOOM_CHECK(batch_size >= 1, "lm_batches: batch_size must be >= 1, got ", batch_size);
  // The dataset is shared: the source and the checkpoint's generator list see the same generator.
  return [train = data.train, batch_size] { return train->get_batch(batch_size); };
}

FitOptions lm_fit_options(models::LanguageModel& model, const text::LMData& data, FitOptions base,
                          LMValidation validation) {
  LOOM_CHECK(data.train && data.val, "lm_fit_options: missing train or validation data");
  LOOM_CHECK(validation.batch_size >= 1 && validation.max_tokens >= 0,
             "lm_fit_options: the validation batch size must be >= 1 and max_tokens >= 0, got ",
             validation.batch_size, " and ", validation.max_tokens);
  base.loss = lm_cross_entropy;
  base.metrics = {};
  base.validate = [&model, val = data.val, validation] {
    return Logs{{"loss", evaluate_lm(model, *val, validation.batch_size, validation.max_tokens)}};
  };
  // Validation reads fixed blocks and never draws from its generator; it is carried all the same, so a
  // checkpoint holds the whole data state whatever reads it later.
  base.generators.push_back(&data.train->generator());
  base.generators.push_back(&data.val->generator());
  base.tokens_per_sample = data.train->context();
  return base;
}

}  // namespace loom::train
