// What a language model brings to the one training loop (train::Trainer's step-driven fit): its loss over
// (B, T, V) logits, random blocks of the training split per step, and a deterministic validation loss.
//   auto data = text::make_lm_data(tok->encode(corpus), /*context=*/100, /*seed=*/0);
//   train::FitOptions fo = train::lm_fit_options(data, {.steps = 300, .optimizer = &opt, .clip_grad_norm = 1});
//   train::Trainer t(*lm, fo);
//   train::History h = t.fit(train::lm_batches(data, 32));   // h.steps: step, loss, val_loss, lr, tokens_per_s
#pragma once
#include <cstdint>

#include "loom/models/language_model.h"
#include "loom/text/lm_dataset.h"
#include "loom/train/trainer.h"

namespace loom::train {

// Mean next-token cross-entropy of logits (B, T, V) against targets i64 (B, T).
Tensor lm_cross_entropy(const Tensor& logits, const Tensor& targets);
// lm_cross_entropy of the model's logits for x against y (both i64 (B, T)).
Tensor lm_loss(models::LanguageModel& model, const Tensor& x, const Tensor& y);
// The mean loss over consecutive non-overlapping blocks of `ds` (starts 0, T, 2T, ...), at most
// `max_tokens` target tokens (0: all), batch_size blocks per forward, without a graph.
double evaluate_lm(models::LanguageModel& model, const text::LanguageModelDataset& ds, int64_t batch_size,
                   int64_t max_tokens = 0);

// batch_size random blocks of the training split per call (nanoGPT's get_batch), from its generator.
BatchSource lm_batches(const text::LMData& data, int64_t batch_size);

struct LMValidation {
  int64_t batch_size = 32;  // blocks per forward
  int64_t max_tokens = 0;   // validate on at most this many tokens of the split (0: all of it)
};
// `base` completed for a language model on `data`: the loss is lm_cross_entropy, no accuracy metric, the
// validation is evaluate_lm on the validation split ("val_loss"), rows count tokens (tokens_per_s), and both
// splits' generators ride in the checkpoints so a resumed run draws the same blocks. Needs the model for
// validation: `model` must outlive the options.
FitOptions lm_fit_options(models::LanguageModel& model, const text::LMData& data, FitOptions base,
                          LMValidation validation = {});

}  // namespace loom::train
