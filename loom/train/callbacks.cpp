#include "loom/train/callbacks.h"

#include <array>
#include <cmath>
#include <sstream>

#include "loom/train/trainer.h"

namespace loom::train {

double monitored(const Logs& logs, const std::string& key, const char* who) {
  auto it = logs.find(key);
  if (it != logs.end()) return it->second;
  std::string known;
  for (const auto& [k, v] : logs) known += (known.empty() ? "" : ", ") + k;
  LOOM_FAIL(who, ": the monitored value '", key, "' is not logged (logged: ", known,
            "); val_* values need validation data");
}

// ---- TerminateOnNaN
void TerminateOnNaN::on_loss(Trainer& t, const StepInfo& s) {
  if (std::isfinite(s.loss)) return;
  std::ostringstream os;
  os << "training diverged: the loss is " << (std::isnan(s.loss) ? "NaN" : "infinite") << " at step " << s.step;
  if (s.num_batches > 0) os << " (epoch " << s.epoch + 1 << ", batch " << s.batch << "/" << s.num_batches << ")";
  os << ". Try a lower learning rate"
     << " (now " << t.optimizer().get_lr(0) << "), gradient clipping, or check the data for NaN/Inf values.";
  throw TrainingDiverged(os.str());
}

// ---- EarlyStopping
namespace {
bool looks_like_score(const std::string& key) {
  return key.find("acc") != std::string::npos || key.find("r2") != std::string::npos;
}
}  // namespace

EarlyStopping::EarlyStopping(EarlyStoppingOptions o) : options(std::move(o)) {
  LOOM_CHECK(options.mode == "min" || options.mode == "max" || options.mode == "auto",
             "EarlyStopping: mode must be min, max or auto, got '", options.mode, "'");
  LOOM_CHECK(options.patience >= 0, "EarlyStopping: patience must be >= 0, got ", options.patience);
  LOOM_CHECK(options.min_delta >= 0, "EarlyStopping: min_delta must be >= 0, got ", options.min_delta);
  maximize_ = options.mode == "max" || (options.mode == "auto" && looks_like_score(options.monitor));
}

void EarlyStopping::on_epoch_end(Trainer& t, const Logs& logs) {
  const double v = monitored(logs, options.monitor, "EarlyStopping");
  const bool better = !has_best_ || (maximize_ ? v > best_ + options.min_delta : v < best_ - options.min_delta);
  if (better) {
    best_ = v, has_best_ = true, wait_ = 0;
    return;
  }
  if (++wait_ > options.patience) {
    stopped_epoch_ = int64_t(logs.at("epoch"));
    std::ostringstream os;
    os << "early stopping: " << options.monitor << " did not improve on " << best_ << " for " << wait_ << " epochs";
    t.stop(os.str());
  }
}

std::map<std::string, double> EarlyStopping::state() const {
  std::map<std::string, double> s{{"wait", double(wait_)}, {"stopped_epoch", double(stopped_epoch_)}};
  if (has_best_) s["best"] = best_;
  return s;
}

void EarlyStopping::load_state(const std::map<std::string, double>& s) {
  wait_ = int64_t(s.at("wait"));
  stopped_epoch_ = int64_t(s.at("stopped_epoch"));
  has_best_ = s.count("best") != 0;
  best_ = has_best_ ? s.at("best") : 0.0;
}

// ---- SchedulerStepper
void SchedulerStepper::on_batch_end(Trainer&, const StepInfo&) {
  if (interval_ == Interval::Step) sched_.step();
}
void SchedulerStepper::on_epoch_end(Trainer&, const Logs&) {
  if (interval_ == Interval::Epoch) sched_.step();
}
std::map<std::string, double> SchedulerStepper::state() const { return sched_.state_dict().scalars; }
void SchedulerStepper::load_state(const std::map<std::string, double>& s) {
  optim::StateDict sd;
  sd.scalars = s;
  sched_.load_state_dict(sd);
}

// ---- ReduceLROnPlateauStepper
void ReduceLROnPlateauStepper::on_epoch_end(Trainer&, const Logs& logs) {
  sched_.step(monitored(logs, monitor_, "ReduceLROnPlateau"));
}
std::map<std::string, double> ReduceLROnPlateauStepper::state() const { return sched_.state_dict().scalars; }
void ReduceLROnPlateauStepper::load_state(const std::map<std::string, double>& s) {
  optim::StateDict sd;
  sd.scalars = s;
  sched_.load_state_dict(sd);
}

// ---- ModelCheckpoint
ModelCheckpoint::ModelCheckpoint(ModelCheckpointOptions o) : options(std::move(o)) {
  LOOM_CHECK(!options.path.empty(), "ModelCheckpoint: path is empty");
  LOOM_CHECK(options.every_steps >= 0, "ModelCheckpoint: every_steps must be >= 0, got ", options.every_steps);
}

void ModelCheckpoint::save(Trainer& t) {
  // The same position twice in a row (an epoch-end save, then the end of training) holds the same state.
  const std::array<int64_t, 3> at = {t.global_step(), t.epoch(), t.batch()};
  if (saves_ > 0 && at == last_saved_) return;
  t.save_checkpoint(options.path);
  last_saved_ = at;
  ++saves_;
}

void ModelCheckpoint::on_batch_end(Trainer& t, const StepInfo& s) {
  if (options.every_steps > 0 && s.step % options.every_steps == 0) save(t);
}
void ModelCheckpoint::on_epoch_end(Trainer& t, const Logs&) {
  if (options.each_epoch) save(t);
}
void ModelCheckpoint::on_train_end(Trainer& t, const Logs&) {
  if (options.at_end) save(t);
}

}  // namespace loom::train
