// The step-based training loop for language models (LSTM LM, GPT): random blocks from a token stream,
// gradient accumulation, clipping, an LR schedule stepped per optimizer step, optional bf16 autocast,
// validation loss over fixed blocks, a run folder (metrics.csv) and checkpoints that resume bit-exactly.
//   auto data = text::make_lm_data(tok->encode(corpus), /*context=*/100, /*seed=*/0);
//   train::LMTrainer t(*lm, opt, &sched, data, {.steps = 300, .batch_size = 32, .clip_grad_norm = 1, .out = "runs/lm"});
//   train::LMTrainResult r = t.fit();   // r.val_loss, r.train_tokens_per_s
#pragma once
#include <functional>
#include <limits>
#include <string>
#include <vector>

#include "loom/io/safetensors.h"
#include "loom/models/language_model.h"
#include "loom/optim/optim.h"
#include "loom/text/lm_dataset.h"

namespace loom::train {

struct LMStepLog {
  int64_t step = 0;
  double loss = 0;                                          // mean training loss of this step
  double val_loss = std::numeric_limits<double>::quiet_NaN();  // NaN when no validation ran at this step
  double lr = 0;
  double tokens_per_s = 0;                                  // training tokens per second so far (this session)
};

struct LMTrainOptions {
  int64_t steps = 100;               // total optimizer steps (a resumed run continues up to this)
  int64_t batch_size = 32;           // blocks per micro-batch
  int64_t grad_accum = 1;            // micro-batches per optimizer step (loss scaled by 1 / grad_accum)
  double clip_grad_norm = 0;         // 0: no clipping
  bool bf16 = false;                 // forward + loss (and validation) under bf16 autocast (ops/autocast.h)
  int64_t log_every = 0;             // a metrics row (and on_log) every N steps; 0: about 10 rows per run
  int64_t eval_every = 0;            // validation loss every N steps; 0: at the last step only
  int64_t eval_tokens = 0;           // validate on at most this many tokens of the split; 0: all of it
  std::string out = {};              // run folder for metrics.csv and checkpoint.safetensors ("": none)
  int64_t checkpoint_every = 0;      // also checkpoint every N steps (always at the end when `out` is set)
  io::Metadata checkpoint_metadata = {};  // stored in the checkpoint (e.g. the run's config)
  // The training loss from the model's logits (B, T, V) and the batch, instead of lm_loss (distillation:
  // train::Distiller::train_loss). Validation stays lm_loss, so val_loss is the plain next-token loss.
  std::function<Tensor(const Tensor& logits, const data::Batch& batch)> train_loss = {};
  std::function<void(const LMStepLog&)> on_log = {};
};

struct LMTrainResult {
  int64_t steps = 0;
  double loss = 0;      // the last step's training loss
  double val_loss = 0;  // at the end
  double train_tokens_per_s = 0;  // over this session's steps, validation and checkpoints excluded
  double seconds = 0;
};

// Mean next-token cross-entropy of the model's logits for x against y (both i64 (B, T)).
Tensor lm_loss(models::LanguageModel& model, const Tensor& x, const Tensor& y);
// The mean loss over consecutive non-overlapping blocks of `ds` (starts 0, T, 2T, ...), at most
// `max_tokens` target tokens (0: all), batch_size blocks per forward, without a graph.
double evaluate_lm(models::LanguageModel& model, const text::LanguageModelDataset& ds, int64_t batch_size,
                   int64_t max_tokens = 0);

class LMTrainer {
 public:
  LMTrainer(models::LanguageModel& model, optim::Optimizer& opt, optim::LRScheduler* scheduler, text::LMData data,
            LMTrainOptions o);

  double train_step();  // one optimizer step; returns its mean loss
  double evaluate();    // evaluate_lm on the validation split with the options' limits
  LMTrainResult fit();  // train_step() until options.steps, logging, validating and checkpointing

  // model + optimizer + scheduler + data generators + step + metrics history, atomically.
  void save_checkpoint(const std::string& path) const;
  // Restores what save_checkpoint wrote; throws naming the file when it does not fit this model/optimizer.
  void load_checkpoint(const std::string& path);

  int64_t step() const { return step_; }
  const std::vector<LMStepLog>& history() const { return history_; }
  std::string checkpoint_path() const;  // out/checkpoint.safetensors

 private:
  void write_metrics() const;

  models::LanguageModel& model_;
  optim::Optimizer& opt_;
  optim::LRScheduler* sched_;
  text::LMData data_;
  LMTrainOptions o_;
  int64_t step_ = 0;
  std::vector<LMStepLog> history_;
};

}  // namespace loom::train
