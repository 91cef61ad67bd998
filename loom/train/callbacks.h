// Callbacks: code the Trainer runs at fixed points of fit(), as in Keras (EarlyStopping, ModelCheckpoint, ...).
//   auto stop = std::make_shared<train::EarlyStopping>(train::EarlyStoppingOptions{.monitor = "val_loss", .patience =
//   3}); auto ckpt = std::make_shared<train::ModelCheckpoint>(train::ModelCheckpointOptions{.path =
//   "run/ckpt.safetensors"}); train::fit(model, loader, {.epochs = 20, .optimizer = &opt, .callbacks = {stop, ckpt}});
// Callbacks run in the order given; put ModelCheckpoint last so the state it saves includes what the others
// did at the same step (a scheduler's step, early stopping's counters). A callback that keeps state between
// epochs exposes it through state()/load_state() so a resumed run continues exactly.
#pragma once
#include <array>
#include <cstdint>
#include <map>
#include <memory>
#include <stdexcept>
#include <string>

#include "loom/core/error.h"
#include "loom/optim/scheduler.h"

namespace loom::train {

class Trainer;

// Named values of one epoch: "epoch", "loss", "accuracy", "val_loss", "val_accuracy", "lr", "seconds", ...
using Logs = std::map<std::string, double>;

// Where training stands after (or, for on_loss, during) one batch.
struct StepInfo {
  int64_t epoch = 0;        // 0-based
  int64_t batch = 0;        // 1-based index within the epoch (the batch just processed)
  int64_t num_batches = 0;  // per epoch
  int64_t step = 0;         // 1-based global optimizer step
  int64_t total_steps = 0;
  int64_t batch_size = 0;
  double loss = 0;
};

// Thrown when the loss stops being a finite number; its message says where and what to try.
class TrainingDiverged : public Error {
 public:
  using Error::Error;
};

class Callback {
 public:
  virtual ~Callback() = default;
  // Identifies the callback's state inside a checkpoint.
  virtual std::string name() const = 0;
  virtual void on_train_begin(Trainer& /*t*/) {}
  virtual void on_epoch_begin(Trainer& /*t*/, int64_t /*epoch*/) {}
  // After the forward pass and the loss, before backward and the update: throwing here leaves the
  // weights as they were before the batch.
  virtual void on_loss(Trainer& /*t*/, const StepInfo& /*s*/) {}
  virtual void on_batch_end(Trainer& /*t*/, const StepInfo& /*s*/) {}
  // A step-driven fit's metrics row (History::steps), after the step's validation and before its on_batch_end
  // (so a checkpoint saved at that step holds the row).
  virtual void on_step_log(Trainer& /*t*/, const Logs& /*row*/) {}
  // After validation; `logs` is the epoch's row (epoch is 1-based in logs["epoch"]).
  virtual void on_epoch_end(Trainer& /*t*/, const Logs& /*logs*/) {}
  // `last` is the last epoch's logs, or those of the unfinished epoch when training stopped mid-epoch.
  virtual void on_train_end(Trainer& /*t*/, const Logs& /*last*/) {}
  virtual std::map<std::string, double> state() const { return {}; }
  virtual void load_state(const std::map<std::string, double>& /*s*/) {}
};
using CallbackPtr = std::shared_ptr<Callback>;

// Stops with TrainingDiverged when the loss is NaN or infinite, naming the step and suggesting a lower
// learning rate. fit() adds one in front of the others unless FitOptions::terminate_on_nan is false.
class TerminateOnNaN : public Callback {
 public:
  std::string name() const override { return "TerminateOnNaN"; }
  void on_loss(Trainer& t, const StepInfo& s) override;
};

struct EarlyStoppingOptions {
  std::string monitor = "val_loss";
  int64_t patience = 0;       // epochs without improvement tolerated before stopping
  double min_delta = 0;       // an improvement must beat the best by more than this
  std::string mode = "auto";  // "min", "max", or "auto": max for accuracy/r2-like names, min otherwise
};
class EarlyStopping : public Callback {
 public:
  explicit EarlyStopping(EarlyStoppingOptions o = {});
  std::string name() const override { return "EarlyStopping"; }
  void on_epoch_end(Trainer& t, const Logs& logs) override;
  std::map<std::string, double> state() const override;
  void load_state(const std::map<std::string, double>& s) override;
  double best() const { return best_; }
  int64_t wait() const { return wait_; }
  int64_t stopped_epoch() const { return stopped_epoch_; }  // 1-based; 0 while not stopped

  EarlyStoppingOptions options;

 private:
  bool maximize_;
  bool has_best_ = false;
  double best_ = 0;
  int64_t wait_ = 0, stopped_epoch_ = 0;
};

enum class Interval { Step, Epoch };

// Steps an LR scheduler after every optimizer step or at the end of every epoch, and keeps its state in
// checkpoints.
class SchedulerStepper : public Callback {
 public:
  SchedulerStepper(optim::LRScheduler& scheduler, Interval interval) : sched_(scheduler), interval_(interval) {}
  std::string name() const override { return "SchedulerStepper"; }
  void on_batch_end(Trainer& t, const StepInfo& s) override;
  void on_epoch_end(Trainer& t, const Logs& logs) override;
  std::map<std::string, double> state() const override;
  void load_state(const std::map<std::string, double>& s) override;

 private:
  optim::LRScheduler& sched_;
  Interval interval_;
};

// Feeds ReduceLROnPlateau the monitored value at the end of every epoch.
class ReduceLROnPlateauStepper : public Callback {
 public:
  ReduceLROnPlateauStepper(optim::ReduceLROnPlateau& scheduler, std::string monitor = "val_loss")
      : sched_(scheduler), monitor_(std::move(monitor)) {}
  std::string name() const override { return "ReduceLROnPlateauStepper"; }
  void on_epoch_end(Trainer& t, const Logs& logs) override;
  std::map<std::string, double> state() const override;
  void load_state(const std::map<std::string, double>& s) override;

 private:
  optim::ReduceLROnPlateau& sched_;
  std::string monitor_;
};

// Saves a training checkpoint (Trainer::save_checkpoint) to `path`: every `every_steps` optimizer steps,
// after each epoch, and when training ends. Each save replaces the file atomically.
struct ModelCheckpointOptions {
  std::string path = {};
  int64_t every_steps = 0;  // 0: not by steps
  bool each_epoch = true;
  bool at_end = true;
};
class ModelCheckpoint : public Callback {
 public:
  explicit ModelCheckpoint(ModelCheckpointOptions o);
  std::string name() const override { return "ModelCheckpoint"; }
  void on_batch_end(Trainer& t, const StepInfo& s) override;
  void on_epoch_end(Trainer& t, const Logs& logs) override;
  void on_train_end(Trainer& t, const Logs& last) override;
  int64_t saves() const { return saves_; }

  ModelCheckpointOptions options;

 private:
  void save(Trainer& t);
  int64_t saves_ = 0;
  std::array<int64_t, 3> last_saved_ = {-1, -1, -1};  // step, epoch, batch
};

// The value of `key` in logs, or an error listing the keys there are (a monitor naming a metric that is
// never logged is a configuration mistake, not something to ignore silently).
double monitored(const Logs& logs, const std::string& key, const char* who);

}  // namespace loom::train
