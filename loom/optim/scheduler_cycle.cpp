// OneCycleLR and ReduceLROnPlateau: the schedulers that also drive momentum or react to a metric.
#include <cmath>
#include <limits>
#include <numbers>

#include "loom/optim/scheduler.h"

namespace loom::optim {

namespace {

// One value for every group, or one per group.
std::vector<double> per_group(const char* op, const char* what, const std::vector<double>& v, size_t groups) {
  LOOM_CHECK(v.size() == 1 || v.size() == groups, op, ": expected 1 or ", groups, " values for ", what, ", got ",
             v.size());
  return v.size() == 1 ? std::vector<double>(groups, v[0]) : v;
}

}  // namespace

// ---- OneCycleLR
OneCycleLR::OneCycleLR(Optimizer& optimizer, OneCycleLROptions o) : LRScheduler(optimizer), options(std::move(o)) {
  const char* op = "OneCycleLR";
  if (options.total_steps <= 0) {
    LOOM_CHECK(options.epochs > 0 && options.steps_per_epoch > 0, op,
               ": give a positive total_steps, or positive epochs and steps_per_epoch");
    options.total_steps = options.epochs * options.steps_per_epoch;
  }
  LOOM_CHECK(options.pct_start >= 0 && options.pct_start <= 1, op, ": pct_start must be in [0, 1], got ",
             options.pct_start);
  LOOM_CHECK(options.anneal_strategy == "cos" || options.anneal_strategy == "linear", op,
             ": anneal_strategy must be 'cos' or 'linear', got '", options.anneal_strategy, "'");
  const double total = double(options.total_steps), pct = options.pct_start;
  if (options.three_phase)
    phases_ = {{pct * total - 1, 0, 1, 0, 1}, {2 * pct * total - 2, 1, 0, 1, 0}, {total - 1, 0, 2, 0, 0}};
  else
    phases_ = {{pct * total - 1, 0, 1, 0, 1}, {total - 1, 1, 2, 1, 0}};

  const size_t groups = optimizer.num_param_groups();
  LOOM_CHECK(!options.max_lr.empty(), op, ": max_lr is required");
  max_lrs_ = per_group(op, "max_lr", options.max_lr, groups);
  for (size_t g = 0; g < groups; ++g) {
    initial_lrs_.push_back(max_lrs_[g] / options.div_factor);
    min_lrs_.push_back(initial_lrs_[g] / options.final_div_factor);
  }
  base_lrs_ = initial_lrs_;
  if (options.cycle_momentum) {
    LOOM_CHECK(optimizer.has_momentum(), op, ": optimizer ", optimizer.name(),
               " has no momentum to cycle; pass cycle_momentum = false");
    for (size_t g = 0; g < groups; ++g) optimizer.set_momentum(options.max_momentum, g);
  }
  initial_step();
}

std::vector<double> OneCycleLR::get_lr() {
  LOOM_CHECK(last_epoch_ <= options.total_steps, "OneCycleLR: tried to step ", last_epoch_ + 1,
             " times; the specified number of total steps is ", options.total_steps);
  const bool cos = options.anneal_strategy == "cos";
  auto anneal = [cos](double start, double end, double pct) {
    return cos ? end + (start - end) / 2.0 * (std::cos(std::numbers::pi * pct) + 1) : (end - start) * pct + start;
  };
  const double step = double(last_epoch_);
  const double moms[2] = {options.max_momentum, options.base_momentum};
  std::vector<double> lrs;
  for (size_t g = 0; g < base_lrs_.size(); ++g) {
    const double lr_at[3] = {initial_lrs_[g], max_lrs_[g], min_lrs_[g]};
    double start = 0, lr = 0, mom = 0;
    for (size_t i = 0; i < phases_.size(); ++i) {
      const Phase& ph = phases_[i];
      if (step <= ph.end_step || i + 1 == phases_.size()) {
        const double pct = (step - start) / (ph.end_step - start);
        lr = anneal(lr_at[ph.start_lr], lr_at[ph.end_lr], pct);
        mom = anneal(moms[ph.start_mom], moms[ph.end_mom], pct);
        break;
      }
      start = ph.end_step;
    }
    lrs.push_back(lr);
    if (options.cycle_momentum) optimizer_.set_momentum(mom, g);
  }
  return lrs;
}

// ---- ReduceLROnPlateau
ReduceLROnPlateau::ReduceLROnPlateau(Optimizer& optimizer, ReduceLROnPlateauOptions o)
    : options(std::move(o)), optimizer_(optimizer) {
  const char* op = "ReduceLROnPlateau";
  LOOM_CHECK(options.mode == "min" || options.mode == "max", op, ": mode ", options.mode, " is unknown!");
  LOOM_CHECK(options.threshold_mode == "rel" || options.threshold_mode == "abs", op, ": threshold mode ",
             options.threshold_mode, " is unknown!");
  LOOM_CHECK(options.factor < 1.0, op, ": factor should be < 1.0, got ", options.factor);
  min_lrs_ = per_group(op, "min_lr", options.min_lr, optimizer.num_param_groups());
  best_ = worst();
  last_lr_ = optimizer.get_lrs();
}

double ReduceLROnPlateau::worst() const {
  return options.mode == "min" ? std::numeric_limits<double>::infinity() : -std::numeric_limits<double>::infinity();
}

bool ReduceLROnPlateau::is_better(double a, double best) const {
  const bool rel = options.threshold_mode == "rel";
  if (options.mode == "min") return rel ? a < best * (1.0 - options.threshold) : a < best - options.threshold;
  return rel ? a > best * (options.threshold + 1.0) : a > best + options.threshold;
}

void ReduceLROnPlateau::step(double metric) {
  ++last_epoch_;
  if (is_better(metric, best_)) {
    best_ = metric;
    num_bad_epochs_ = 0;
  } else {
    ++num_bad_epochs_;
  }
  if (cooldown_counter_ > 0) {
    --cooldown_counter_;
    num_bad_epochs_ = 0;  // bad epochs during a cooldown do not count
  }
  if (num_bad_epochs_ > options.patience) {
    for (size_t g = 0; g < optimizer_.num_param_groups(); ++g) {
      const double old_lr = optimizer_.get_lr(g), new_lr = std::max(old_lr * options.factor, min_lrs_[g]);
      if (old_lr - new_lr > options.eps) optimizer_.set_lr(new_lr, g);
    }
    cooldown_counter_ = options.cooldown;
    num_bad_epochs_ = 0;
  }
  last_lr_ = optimizer_.get_lrs();
}

StateDict ReduceLROnPlateau::state_dict() const {
  StateDict sd;
  sd.scalars["last_epoch"] = double(last_epoch_);
  sd.scalars["num_bad_epochs"] = double(num_bad_epochs_);
  sd.scalars["cooldown_counter"] = double(cooldown_counter_);
  if (std::isfinite(best_)) sd.scalars["best"] = best_;
  return sd;
}

void ReduceLROnPlateau::load_state_dict(const StateDict& sd) {
  last_epoch_ = int64_t(sd.scalar("last_epoch"));
  num_bad_epochs_ = int64_t(sd.scalar("num_bad_epochs"));
  cooldown_counter_ = int64_t(sd.scalar("cooldown_counter"));
  best_ = sd.has("best") ? sd.scalar("best") : worst();
  last_lr_ = optimizer_.get_lrs();
}

}  // namespace loom::optim
