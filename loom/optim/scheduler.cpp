// The epoch-driven schedulers. Each get_lr() is PyTorch 1.13's chainable form (it scales the groups'
// current lrs rather than recomputing from the base), so sequences agree with torch to the last digit and
// an lr changed by hand between steps carries through the same way.
#include "loom/optim/scheduler.h"

#include <algorithm>
#include <cmath>
#include <numbers>

namespace loom::optim {

LRScheduler::LRScheduler(Optimizer& optimizer) : optimizer_(optimizer), base_lrs_(optimizer.get_lrs()) {}

void LRScheduler::initial_step() {
  step_count_ = 0;
  step();
}

void LRScheduler::step() {
  ++step_count_;
  ++last_epoch_;
  std::vector<double> lrs = get_lr();
  for (size_t g = 0; g < lrs.size(); ++g) optimizer_.set_lr(lrs[g], g);
  last_lr_ = optimizer_.get_lrs();
}

StateDict LRScheduler::state_dict() const {
  StateDict sd;
  sd.scalars["last_epoch"] = double(last_epoch_);
  sd.scalars["step_count"] = double(step_count_);
  for (size_t g = 0; g < base_lrs_.size(); ++g) sd.scalars["base_lrs." + std::to_string(g)] = base_lrs_[g];
  for (size_t g = 0; g < last_lr_.size(); ++g) sd.scalars["last_lr." + std::to_string(g)] = last_lr_[g];
  return sd;
}

void LRScheduler::load_state_dict(const StateDict& sd) {
  last_epoch_ = int64_t(sd.scalar("last_epoch"));
  step_count_ = int64_t(sd.scalar("step_count"));
  for (size_t g = 0; g < base_lrs_.size(); ++g) base_lrs_[g] = sd.scalar("base_lrs." + std::to_string(g));
  for (size_t g = 0; g < last_lr_.size(); ++g) last_lr_[g] = sd.scalar("last_lr." + std::to_string(g));
}

// ---- StepLR
StepLR::StepLR(Optimizer& optimizer, StepLROptions o) : LRScheduler(optimizer), options(o) {
  LOOM_CHECK(o.step_size > 0, "StepLR: step_size must be positive, got ", o.step_size);
  initial_step();
}

std::vector<double> StepLR::get_lr() {
  std::vector<double> lrs = optimizer_.get_lrs();
  if (last_epoch_ != 0 && last_epoch_ % options.step_size == 0)
    for (double& lr : lrs) lr *= options.gamma;
  return lrs;
}

// ---- MultiStepLR
MultiStepLR::MultiStepLR(Optimizer& optimizer, MultiStepLROptions o) : LRScheduler(optimizer), options(std::move(o)) {
  initial_step();
}

std::vector<double> MultiStepLR::get_lr() {
  std::vector<double> lrs = optimizer_.get_lrs();
  const auto hits = std::count(options.milestones.begin(), options.milestones.end(), last_epoch_);
  if (hits > 0)
    for (double& lr : lrs) lr *= std::pow(options.gamma, double(hits));
  return lrs;
}

// ---- ExponentialLR
ExponentialLR::ExponentialLR(Optimizer& optimizer, ExponentialLROptions o) : LRScheduler(optimizer), options(o) {
  initial_step();
}

std::vector<double> ExponentialLR::get_lr() {
  std::vector<double> lrs = optimizer_.get_lrs();
  if (last_epoch_ != 0)
    for (double& lr : lrs) lr *= options.gamma;
  return lrs;
}

// ---- CosineAnnealingLR
CosineAnnealingLR::CosineAnnealingLR(Optimizer& optimizer, CosineAnnealingLROptions o)
    : LRScheduler(optimizer), options(o) {
  LOOM_CHECK(o.T_max > 0, "CosineAnnealingLR: T_max must be positive, got ", o.T_max);
  initial_step();
}

std::vector<double> CosineAnnealingLR::get_lr() {
  constexpr double pi = std::numbers::pi;
  std::vector<double> lrs = optimizer_.get_lrs();
  if (last_epoch_ == 0) return lrs;
  const double T = double(options.T_max), t = double(last_epoch_), eta = options.eta_min;
  for (size_t g = 0; g < lrs.size(); ++g) {
    if ((last_epoch_ - 1 - options.T_max) % (2 * options.T_max) == 0)
      // The trough of the wave, where the ratio form below would divide by zero.
      lrs[g] = lrs[g] + (base_lrs_[g] - eta) * (1 - std::cos(pi / T)) / 2;
    else
      lrs[g] = (1 + std::cos(pi * t / T)) / (1 + std::cos(pi * (t - 1) / T)) * (lrs[g] - eta) + eta;
  }
  return lrs;
}

// ---- LinearWarmupCosine
LinearWarmupCosine::LinearWarmupCosine(Optimizer& optimizer, LinearWarmupCosineOptions o)
    : LRScheduler(optimizer), options(o) {
  LOOM_CHECK(o.warmup_steps >= 0 && o.total_steps > 0 && o.warmup_steps <= o.total_steps,
             "LinearWarmupCosine: need 0 <= warmup_steps <= total_steps and total_steps > 0, got warmup_steps = ",
             o.warmup_steps, ", total_steps = ", o.total_steps);
  initial_step();
}

std::vector<double> LinearWarmupCosine::get_lr() {
  std::vector<double> lrs(base_lrs_.size());
  const double t = double(last_epoch_), warm = double(options.warmup_steps);
  for (size_t g = 0; g < lrs.size(); ++g) {
    if (last_epoch_ < options.warmup_steps) {
      lrs[g] = base_lrs_[g] * t / warm;
    } else {
      const double span = double(std::max<int64_t>(1, options.total_steps - options.warmup_steps));
      const double progress = std::min(1.0, (t - warm) / span);
      lrs[g] = options.min_lr + (base_lrs_[g] - options.min_lr) * 0.5 * (1 + std::cos(std::numbers::pi * progress));
    }
  }
  return lrs;
}

}  // namespace loom::optim
