// The training loop. Its position is (epoch_, batch_, step_): the epoch in progress, the batches of it already
// applied, and the optimizer steps in all. A checkpoint records that position and the DataLoader is asked
// for the same epoch from the same batch on resume, which is what makes a resumed run identical.
#include "loom/train/trainer.h"

#include <chrono>
#include <cmath>
#include <filesystem>

#include "loom/autograd/grad_mode.h"
#include "loom/nn/loss.h"
#include "loom/ops/autocast.h"
#include "loom/optim/clip.h"

namespace loom::train {

namespace {

double now_s() {
  using namespace std::chrono;
  return duration<double>(steady_clock::now().time_since_epoch()).count();
}

int64_t batch_size_of(const data::Batch& b) { return b.data.dim() > 0 ? b.data.size(0) : 1; }

}  // namespace

Tensor default_loss(const Tensor& output, const Tensor& target) { return cross_entropy(output, target); }

Trainer::Trainer(nn::Module& model, FitOptions options) : model_(model), opts_(std::move(options)) {
  LOOM_CHECK(opts_.optimizer != nullptr, "fit: FitOptions::optimizer is required");
  LOOM_CHECK(opts_.epochs >= 0 && opts_.steps >= 0, "fit: epochs and steps must be >= 0, got ", opts_.epochs, " and ",
             opts_.steps);
  LOOM_CHECK(opts_.clip_grad_norm >= 0, "fit: clip_grad_norm must be >= 0, got ", opts_.clip_grad_norm);
  LOOM_CHECK(opts_.log_every >= 0, "fit: log_every must be >= 0, got ", opts_.log_every);
  LOOM_CHECK(opts_.world_size >= 1, "fit: world_size must be >= 1, got ", opts_.world_size);
  LOOM_CHECK(!opts_.batch_loss || (opts_.metrics.empty() && opts_.validation == nullptr),
             "fit: with batch_loss there are no outputs: metrics must be empty and validation null");
  LOOM_CHECK(!opts_.batch_loss || !opts_.train_loss, "fit: give batch_loss or train_loss, not both");
  LOOM_CHECK(!opts_.batch_grads || (!opts_.batch_loss && !opts_.train_loss && opts_.grad_accum == 1),
             "fit: batch_grads sets the gradients of one batch itself: it cannot be combined with batch_loss, "
             "train_loss or grad_accum > 1");
  LOOM_CHECK(opts_.grad_accum >= 1, "fit: grad_accum must be >= 1, got ", opts_.grad_accum);
  LOOM_CHECK(opts_.eval_every >= 0 && opts_.tokens_per_sample >= 0, "fit: eval_every and tokens_per_sample must be >= 0, got ",
             opts_.eval_every, " and ", opts_.tokens_per_sample);
  // The data-parallel hooks all-reduce as gradients become ready, i.e. after the first accumulated batch.
  LOOM_CHECK(opts_.grad_accum == 1 || (!opts_.before_forward && !opts_.after_backward),
             "fit: grad_accum > 1 cannot be combined with the data-parallel hooks (before_forward/after_backward)");
  if (!opts_.loss) opts_.loss = default_loss;
  for (const auto& name : opts_.metrics) metrics_.push_back(make_metric(name));
  // Built-ins first: a NaN stops the step before anyone sees it, the scheduler moves before checkpoints
  // save its state, and progress lines show the epoch before the user's callbacks act on it.
  if (opts_.terminate_on_nan) callbacks_.push_back(std::make_shared<TerminateOnNaN>());
  if (opts_.scheduler)
    callbacks_.push_back(std::make_shared<SchedulerStepper>(*opts_.scheduler, opts_.scheduler_interval));
  if (opts_.progress != ProgressMode::None)
    callbacks_.push_back(std::make_shared<ProgressLogger>(
        ProgressOptions{.mode = opts_.progress, .log_every = opts_.log_every, .out = opts_.out}));
  for (const auto& c : opts_.callbacks) {
    LOOM_CHECK(c != nullptr, "fit: a callback is null");
    callbacks_.push_back(c);
  }
  if (!opts_.resume_from.empty() && std::filesystem::exists(opts_.resume_from)) load_checkpoint(opts_.resume_from);
}

double Trainer::epoch_seconds() const {
  return epoch_seconds_done_ + (segment_start_ > 0 ? now_s() - segment_start_ : 0);
}

void Trainer::stop(const std::string& reason) {
  stopping_ = true;
  if (history_.stop_reason.empty()) history_.stop_reason = reason;
}

void Trainer::reset_epoch_metrics() {
  loss_metric_.reset();
  for (auto& m : metrics_) m->reset();
  epoch_samples_ = 0;
  epoch_seconds_done_ = 0;
}

Logs Trainer::running_logs() const {
  Logs l{{"loss", loss_metric_.compute()}};
  for (const auto& m : metrics_) l[m->name()] = m->compute();
  return l;
}

StepInfo Trainer::train_step(std::span<const data::Batch> batches) {
  StepInfo info{.epoch = epoch_, .batch = batch_ + 1, .num_batches = num_batches_, .step = step_ + 1,
                .total_steps = total_steps_};
  optim::Optimizer& opt = *opts_.optimizer;
  const double scale = 1.0 / double(batches.size());
  double loss_sum = 0;
  int64_t samples = 0;
  // The previous step's gradients go before the forward, so its activations can reuse their memory.
  opt.zero_grad(/*set_to_none=*/true);
  for (size_t k = 0; k < batches.size(); ++k) {
    const data::Batch& b = batches[k];
    int64_t n = 0;
    if (opts_.before_forward) opts_.before_forward();
    Tensor out, loss;
    {  // bf16 products in the forward when asked; backward follows each product's forward precision
      AutocastGuard ac(opts_.autocast != DType::f32 ? opts_.autocast : autocast_dtype());
      if (opts_.batch_grads) {
        BatchGrads g = opts_.batch_grads(b);
        LOOM_CHECK(g.samples >= 0 && (g.samples == 0 || g.output.defined()),
                   "fit: batch_grads must report samples >= 0 and, when there are samples, their outputs");
        n = g.samples, out = g.output, info.loss = g.loss;
      } else if (opts_.batch_loss) {
        loss = opts_.batch_loss(b);
      } else {
        out = model_(b.data);
        loss = opts_.train_loss ? opts_.train_loss(out, b) : opts_.loss(out, b.target);
      }
    }
    if (!opts_.batch_grads) {
      LOOM_CHECK(loss.numel() == 1, "fit: the loss must be a scalar, got shape ", loss.shape());
      info.loss = loss.item();
      n = batch_size_of(b);
    }
    info.batch_size = n;
    for (auto& c : callbacks_) c->on_loss(*this, info);  // a NaN stops here, before any update

    if (!opts_.batch_grads) (batches.size() > 1 ? loss * scale : loss).backward();
    loss_sum += info.loss;
    loss_metric_.add(info.loss, n);
    if (!metrics_.empty() && n > 0) {
      NoGradGuard g;
      Tensor o = out.detach();
      for (auto& m : metrics_) m->update(o, b.target);
    }
    samples += n;
    epoch_samples_ += n * opts_.world_size;
    total_samples_ += n * opts_.world_size;
  }
  if (opts_.after_backward) opts_.after_backward();
  if (opts_.clip_grad_norm > 0) optim::clip_grad_norm_(model_.parameters(), opts_.clip_grad_norm);
  opt.step();
  ++batch_, ++step_;
  info.loss = loss_sum * scale;  // the step's mean loss
  info.batch_size = samples;
  return info;
}

Logs Trainer::epoch_logs() {
  Logs logs = running_logs();
  const double train_s = epoch_seconds();
  logs["epoch"] = double(epoch_ + 1);
  logs["lr"] = opts_.optimizer->get_lr(0);
  logs["samples_per_s"] = train_s > 0 ? double(epoch_samples_) / train_s : 0.0;
  const double t0 = now_s();
  if (opts_.validation) {
    AutocastGuard ac(opts_.autocast != DType::f32 ? opts_.autocast : autocast_dtype());
    EvalOptions eo{.loss = opts_.loss, .metrics = opts_.metrics};
    for (const auto& [k, v] : evaluate(model_, *opts_.validation, eo)) logs["val_" + k] = v;
  }
  logs["seconds"] = train_s + (now_s() - t0);
  return logs;
}

History Trainer::fit(data::DataLoader& loader) {
  LOOM_CHECK(loaded_mode_ != 1, "fit: the checkpoint was made by a step-driven fit (a BatchSource), not a DataLoader one");
  LOOM_CHECK(opts_.grad_accum == 1 && !opts_.validate && opts_.eval_every == 0 && opts_.tokens_per_sample == 0 &&
                 !opts_.row_values && !opts_.row_mean_loss,
             "fit: grad_accum, validate, eval_every, tokens_per_sample, row_values and row_mean_loss are for a "
             "step-driven fit (a BatchSource); with a DataLoader use FitOptions::validation and epoch rows");
  step_driven_ = false;
  num_batches_ = loader.num_batches();
  LOOM_CHECK(num_batches_ > 0, "fit: the training data has no batches (", num_batches_,
             "); an empty dataset, or drop_last with fewer samples than batch_size");
  LOOM_CHECK(loaded_num_batches_ < 0 || loaded_num_batches_ == num_batches_, "fit: the checkpoint was made with ",
             loaded_num_batches_, " batches per epoch, this data gives ", num_batches_,
             " (the dataset or batch size changed, so the data order cannot be continued)");
  total_steps_ = opts_.steps > 0 ? opts_.steps : opts_.epochs * num_batches_;
  epochs_ = opts_.steps > 0 ? (opts_.steps + num_batches_ - 1) / num_batches_ : opts_.epochs;
  stopping_ = false;
  history_.stop_reason.clear();

  for (auto& c : callbacks_) c->on_train_begin(*this);
  while (epoch_ < epochs_ && step_ < total_steps_ && !stopping_) {
    if (batch_ == 0) reset_epoch_metrics();
    for (auto& c : callbacks_) c->on_epoch_begin(*this, epoch_);
    model_.train();
    loader.set_epoch(epoch_);
    loader.begin_at(batch_);
    segment_start_ = now_s();
    if (batch_ < num_batches_) {
      for (auto& b : loader) {
        const StepInfo info = train_step({&b, 1});
        for (auto& c : callbacks_) c->on_batch_end(*this, info);
        if (stopping_ || step_ >= total_steps_) break;
      }
    }
    epoch_seconds_done_ = epoch_seconds();
    segment_start_ = 0;
    if (batch_ < num_batches_) break;  // stopped or out of steps mid-epoch: the position stays mid-epoch

    Logs logs = epoch_logs();
    total_seconds_ += epoch_seconds_done_;
    history_.epochs.push_back(logs);
    ++epoch_;
    batch_ = 0;
    reset_epoch_metrics();
    for (auto& c : callbacks_) c->on_epoch_end(*this, logs);
  }

  if (batch_ > 0) {
    // An unfinished epoch still gets a row (validation included) so a short --steps run reports something.
    history_.last = epoch_logs();
  } else {
    history_.last = history_.epochs.empty() ? Logs{} : history_.epochs.back();
  }
  const double secs = total_seconds_ + (batch_ > 0 ? epoch_seconds_done_ : 0.0);
  history_.train_samples_per_s = secs > 0 ? double(total_samples_) / secs : 0.0;
  history_.last["train_samples_per_s"] = history_.train_samples_per_s;
  for (auto& c : callbacks_) c->on_train_end(*this, history_.last);
  return history_;
}

void Trainer::log_step_row(int64_t step, double loss, double lr, bool validate) {
  if (opts_.row_mean_loss) loss = loss_metric_.compute();
  loss_metric_.reset();  // a step-driven fit's running loss covers the steps since the previous row
  Logs row{{"step", double(step)}, {"loss", loss}, {"lr", lr}};
  for (auto& m : metrics_) {  // since the previous row
    row[m->name()] = m->compute();
    m->reset();
  }
  const double per_s = total_seconds_ > 0 ? double(total_samples_) / total_seconds_ : 0.0;
  if (opts_.tokens_per_sample > 0)
    row["tokens_per_s"] = per_s * double(opts_.tokens_per_sample);
  else
    row["samples_per_s"] = per_s;
  if (validate) {
    AutocastGuard ac(opts_.autocast != DType::f32 ? opts_.autocast : autocast_dtype());
    for (const auto& [k, v] : opts_.validate()) row["val_" + k] = v;
  }
  if (opts_.row_values) opts_.row_values(row);
  history_.steps.push_back(row);
  for (auto& c : callbacks_) c->on_step_log(*this, row);
}

History Trainer::fit(const BatchSource& source) {
  LOOM_CHECK(source != nullptr, "fit: the batch source is empty");
  LOOM_CHECK(opts_.steps > 0, "fit: a step-driven fit (a BatchSource) needs FitOptions::steps > 0");
  LOOM_CHECK(opts_.validation == nullptr,
             "fit: a step-driven fit validates through FitOptions::validate, not a validation DataLoader");
  LOOM_CHECK(loaded_mode_ != 0, "fit: the checkpoint was made by a DataLoader fit, not a step-driven one");
  step_driven_ = true;
  num_batches_ = -1;
  total_steps_ = opts_.steps;
  epochs_ = 1;
  stopping_ = false;
  history_.stop_reason.clear();
  const int64_t log_every = opts_.log_every > 0 ? opts_.log_every : std::max<int64_t>(1, total_steps_ / 10);

  for (auto& c : callbacks_) c->on_train_begin(*this);
  std::vector<data::Batch> batches(size_t(opts_.grad_accum));
  double loss = 0, lr = 0;
  bool stepped = false;
  while (step_ < total_steps_ && !stopping_) {
    lr = opts_.optimizer->get_lr(0);  // the lr this step uses (the scheduler moves it in on_batch_end)
    // Throughput counts drawing the batches and the update, not validation, rows or checkpoints.
    const double t0 = now_s();
    for (auto& b : batches) b = source();
    model_.train();  // validation (the caller's) may have left it in eval mode
    const StepInfo info = train_step(batches);
    total_seconds_ += now_s() - t0;
    loss = info.loss, stepped = true;
    const bool last = step_ == total_steps_;
    const bool eval = opts_.validate && (last || (opts_.eval_every > 0 && step_ % opts_.eval_every == 0));
    if (eval || last || step_ % log_every == 0) log_step_row(step_, loss, lr, eval);
    for (auto& c : callbacks_) c->on_batch_end(*this, info);
  }
  // A callback stopped the run between rows: its last step still gets one (validated), as a --steps run does.
  if (stepped && (history_.steps.empty() || int64_t(history_.steps.back().at("step")) != step_))
    log_step_row(step_, loss, lr, opts_.validate != nullptr);

  history_.last = history_.steps.empty() ? Logs{} : history_.steps.back();
  history_.train_samples_per_s = total_seconds_ > 0 ? double(total_samples_) / total_seconds_ : 0.0;
  history_.last["train_samples_per_s"] = history_.train_samples_per_s;
  for (auto& c : callbacks_) c->on_train_end(*this, history_.last);
  return history_;
}

History fit(nn::Module& model, data::DataLoader& train, FitOptions options) {
  Trainer t(model, std::move(options));
  return t.fit(train);
}

}  // namespace loom::train
