// The Trainer: Keras-style fit / evaluate / predict over a model, an optimizer and a DataLoader, or a
// step-driven batch source (language models: random blocks of a token stream, a metrics row every N steps).
//   optim::Adam opt(model->parameters(), {.lr = 1e-3});
//   train::History h = train::fit(*model, loader, {.epochs = 5, .optimizer = &opt, .validation = &test_loader});
//   train::Logs m = train::evaluate(*model, test_loader);      // {"loss": ..., "accuracy": ...}
//   train::BatchSource blocks = [&] { return data.train->get_batch(32); };
//   train::Trainer(*lm, {.steps = 300, .optimizer = &opt, .validate = ..., .eval_every = 100}).fit(blocks);
// Each piece stands alone: a plain loop can use the metrics, callbacks and checkpoints without fit(). With
// checkpoints every N steps, a run killed at any moment and resumed (FitOptions::resume_from) ends with the
// same weights, bit for bit, as one that was never interrupted (same thread count).
#pragma once
#include <functional>
#include <iosfwd>
#include <span>
#include <string>
#include <vector>

#include "loom/core/dtype.h"
#include "loom/core/generator.h"
#include "loom/data/dataloader.h"
#include "loom/io/safetensors.h"
#include "loom/nn/module.h"
#include "loom/optim/optimizer.h"
#include "loom/optim/scheduler.h"
#include "loom/train/callbacks.h"
#include "loom/train/metrics.h"
#include "loom/train/progress.h"

namespace loom::train {

// loss(output, target) -> scalar tensor.
using LossFn = std::function<Tensor(const Tensor& output, const Tensor& target)>;

// The batches of a step-driven fit (Trainer::fit(BatchSource&)): each call hands the next training batch, e.g.
// random blocks of a token stream. There are no epochs; FitOptions::steps says how many optimizer steps to take.
// The generator it draws from belongs in FitOptions::generators, so checkpoints carry the stream's position.
using BatchSource = std::function<data::Batch()>;

// What FitOptions::batch_grads hands back for one batch, the gradients being already set on the parameters.
struct BatchGrads {
  double loss = 0;      // the batch's mean loss per sample (anything, e.g. 0, when it has no samples)
  Tensor output;        // the model's outputs, for the metrics (undefined when the batch has no samples)
  int64_t samples = 0;  // the batch's samples: 0 for an empty batch (a Poisson sample that drew nobody)
};

struct FitOptions {
  int64_t epochs = 1;
  int64_t steps = 0;                      // > 0: stop after this many optimizer steps in all (epochs is then ignored)
  optim::Optimizer* optimizer = nullptr;  // required
  LossFn loss = nullptr;                  // default: cross_entropy (class-index targets)
  // The training loss when it needs the batch besides the outputs (distillation: the teacher's logits of
  // batch.data, train/distill.h). Used for training steps only: metrics still see (output, batch.target) and
  // validation uses `loss`, so val_loss stays the plain task loss.
  std::function<Tensor(const Tensor& output, const data::Batch& batch)> train_loss = nullptr;
  std::vector<std::string> metrics = {"accuracy"};  // see make_metric; logged as-is and with "val_"
  data::DataLoader* validation = nullptr;           // evaluated after every epoch when set
  std::vector<CallbackPtr> callbacks = {};
  optim::LRScheduler* scheduler = nullptr;  // stepped per scheduler_interval (a SchedulerStepper in front)
  Interval scheduler_interval = Interval::Epoch;
  double clip_grad_norm = 0;  // > 0: clip the global 2-norm of the gradients before each update
  ProgressMode progress = ProgressMode::Auto;
  int64_t log_every = 0;        // progress lines / JSON step events every N steps (0: per epoch only)
  std::ostream* out = nullptr;  // progress output; default std::cout
  bool terminate_on_nan = true;
  std::string resume_from = {};  // a training checkpoint to continue from ("" or a missing file: start fresh)
  std::vector<Generator*> generators = {};  // RNGs besides default_generator() whose state checkpoints carry
  io::Metadata checkpoint_metadata = {};    // extra entries stored in every training checkpoint
  // Data-parallel training (loom/dist: DistributedDataParallel fills these): called before each forward and
  // between backward and the optimizer step (the gradient all-reduce); world_size ranks each train on one
  // batch per step, so samples_per_s counts world_size times the local samples.
  std::function<void()> before_forward = nullptr;
  std::function<void()> after_backward = nullptr;
  int64_t world_size = 1;
  // The loss of one batch for a model that is not called as model(batch.data), e.g. seq2seq's
  // forward(source, lengths, target, teacher forcing). Then no outputs exist: metrics must be empty and there
  // is no validation loader (the caller evaluates from a callback).
  std::function<Tensor(const data::Batch&)> batch_loss = nullptr;
  // DType::bf16: every forward + loss (training and validation) under bf16 autocast (ops/autocast.h);
  // DType::f32: as the caller's AutocastGuard, if any, has it.
  DType autocast = DType::f32;
  // Replaces forward + loss + backward for one batch: sets every trainable parameter's .grad itself and says
  // the batch's loss, outputs and size; the rest of the step (clipping, the optimizer, metrics, callbacks,
  // checkpoints) is the loop's as usual. DP-SGD's private gradients are one (privacy/dp_fit.h). The gradients
  // are set, not accumulated: not with grad_accum > 1, batch_loss or train_loss.
  std::function<BatchGrads(const data::Batch&)> batch_grads = nullptr;

  // ---- step-driven fit (fit(BatchSource&)); the DataLoader form refuses these when set
  int64_t grad_accum = 1;  // batches per optimizer step, each loss scaled by 1 / grad_accum
  // The validation logs ({"loss": ...}, logged with "val_"), run every eval_every steps and after the last
  // step (eval_every 0: the last step only), in eval mode without gradients (the caller evaluates).
  std::function<Logs()> validate = nullptr;
  int64_t eval_every = 0;
  // A metrics row (History::steps, Callback::on_step_log) every log_every steps (0: about ten per run), at every
  // validation and after the last step: step, loss (that step's), lr (the one it used), val_*, and the
  // throughput samples_per_s, or tokens_per_s when tokens_per_sample > 0 (samples_per_s times it).
  int64_t tokens_per_sample = 0;
  // Values added to each metrics row before it is stored, shown and written (DP-SGD: epsilon, epoch).
  std::function<void(Logs& row)> row_values = nullptr;
  // true: a row's loss is the sample-weighted mean over the steps since the previous row (DP-SGD, whose Poisson
  // batches vary in size and may be empty); false: the loss of the row's own step.
  bool row_mean_loss = false;
};

struct History {
  std::vector<Logs> epochs;  // one row per completed epoch
  std::vector<Logs> steps;   // a step-driven fit's metrics rows (see FitOptions::tokens_per_sample)
  Logs last;                 // the final row (an unfinished epoch's when training stopped mid-epoch)
  std::string stop_reason;   // why training ended before the planned epochs/steps, or ""
  double train_samples_per_s = 0;
};

class Trainer {
 public:
  Trainer(nn::Module& model, FitOptions options);
  Trainer(const Trainer&) = delete;
  Trainer& operator=(const Trainer&) = delete;

  // Trains until the epochs/steps are done or a callback stops it. Continues from where a loaded
  // checkpoint (resume_from, or load_checkpoint) left off.
  History fit(data::DataLoader& train);
  // Trains FitOptions::steps optimizer steps in all on batches from `source` (a resumed run continues to it),
  // with grad_accum batches per step, validation every eval_every steps and a metrics row every log_every.
  History fit(const BatchSource& source);

  // Training checkpoints: model weights, optimizer state, callback (scheduler) state, RNG states,
  // epoch/step, the data order position, the unfinished epoch's running metrics and the history.
  void save_checkpoint(const std::string& path) const;
  // Restores all of the above into this trainer's objects; fit() then carries on. Throws naming the file
  // when the checkpoint does not fit (another model, optimizer, batch count or callback list).
  void load_checkpoint(const std::string& path);

  // ---- where training stands (for callbacks)
  nn::Module& model() const { return model_; }
  optim::Optimizer& optimizer() const { return *opts_.optimizer; }
  const FitOptions& options() const { return opts_; }
  int64_t epoch() const { return epoch_; }  // 0-based epoch in progress (or next to start)
  int64_t batch() const { return batch_; }  // batches done in epoch()
  int64_t global_step() const { return step_; }
  int64_t epochs() const { return epochs_; }
  int64_t total_steps() const { return total_steps_; }
  int64_t num_batches() const { return num_batches_; }  // -1 in a step-driven fit
  bool step_driven() const { return step_driven_; }
  double epoch_seconds() const;  // training time of the epoch in progress
  int64_t epoch_samples() const { return epoch_samples_; }
  Logs running_logs() const;  // this epoch's training loss and metrics so far
  const History& history() const { return history_; }

  // Ends training at the next batch boundary (callbacks use it).
  void stop(const std::string& reason);
  bool stopping() const { return stopping_; }

 private:
  // One optimizer step over `batches` (several: gradient accumulation); on_batch_end is the caller's to run.
  StepInfo train_step(std::span<const data::Batch> batches);
  void log_step_row(int64_t step, double loss, double lr, bool validate);
  Logs epoch_logs();
  void reset_epoch_metrics();
  std::string state_json() const;
  void load_state_json(const std::string& json, const std::string& path);

  nn::Module& model_;
  FitOptions opts_;
  std::vector<CallbackPtr> callbacks_;  // built-ins in front of the user's
  MeanLoss loss_metric_;
  std::vector<MetricPtr> metrics_;
  History history_;
  int64_t epoch_ = 0, batch_ = 0, step_ = 0;
  int64_t epochs_ = 0, total_steps_ = 0, num_batches_ = -1, loaded_num_batches_ = -1;
  int64_t epoch_samples_ = 0, total_samples_ = 0;
  double epoch_seconds_done_ = 0, total_seconds_ = 0;  // accumulated before the current fit() segment
  double segment_start_ = 0;
  bool stopping_ = false;
  bool step_driven_ = false;
  int loaded_mode_ = -1;  // the loaded checkpoint's fit: -1 none, 0 epochs (DataLoader), 1 steps (BatchSource)
};

// Keras-style one-call forms.
History fit(nn::Module& model, data::DataLoader& train, FitOptions options);

struct EvalOptions {
  LossFn loss = nullptr;  // default: cross_entropy
  std::vector<std::string> metrics = {"accuracy"};
  ConfusionMatrix* confusion = nullptr;  // filled too when given
};
// {"loss", each metric} over the whole loader, in eval mode without gradients (the mode is restored after).
Logs evaluate(nn::Module& model, data::DataLoader& data, const EvalOptions& o = {});
// Model outputs for `inputs` (N, ...) in batches, stacked to (N, ...), in eval mode without gradients.
Tensor predict(nn::Module& model, const Tensor& inputs, int64_t batch_size = 256);
// Outputs for every batch of the loader (targets are ignored).
Tensor predict(nn::Module& model, data::DataLoader& data);

// The loss fit() and evaluate() use when none is given.
Tensor default_loss(const Tensor& output, const Tensor& target);

}  // namespace loom::train
