// Learning-rate schedulers, like torch.optim.lr_scheduler (PyTorch 1.13 values, step for step).
//   optim::SGD opt(params, {.lr = 0.1});
//   optim::CosineAnnealingLR sched(opt, {.T_max = 100});
//   for (epoch...) { train(...); opt.step(); sched.step(); }   // sched.get_last_lr()[0] is the lr in use
// Constructing a scheduler performs PyTorch's initial step: it sets each group's lr for epoch 0.
#pragma once
#include <string>
#include <vector>

#include "loom/optim/optimizer.h"

namespace loom::optim {

class LRScheduler {
 public:
  virtual ~LRScheduler() = default;
  LRScheduler(const LRScheduler&) = delete;
  LRScheduler& operator=(const LRScheduler&) = delete;

  // Advances one epoch (or batch) and writes the new lr into every param group.
  void step();
  const std::vector<double>& get_last_lr() const { return last_lr_; }
  int64_t last_epoch() const { return last_epoch_; }
  const std::vector<double>& base_lrs() const { return base_lrs_; }

  // scalars: "last_epoch", "step_count", "base_lrs.<g>", "last_lr.<g>". The optimizer's own state dict
  // carries the lrs themselves, so restore both to resume a run.
  virtual StateDict state_dict() const;
  virtual void load_state_dict(const StateDict& sd);

 protected:
  explicit LRScheduler(Optimizer& optimizer);
  // The lrs for last_epoch_, in PyTorch's chainable form (from the groups' current lrs where torch does so).
  virtual std::vector<double> get_lr() = 0;
  // PyTorch's _initial_step; each concrete scheduler calls it at the end of its constructor.
  void initial_step();

  Optimizer& optimizer_;
  std::vector<double> base_lrs_;
  int64_t last_epoch_ = -1;
  int64_t step_count_ = 0;
  std::vector<double> last_lr_;
};

// lr *= gamma every step_size epochs.
struct StepLROptions {
  int64_t step_size = 1;
  double gamma = 0.1;
};
class StepLR final : public LRScheduler {
 public:
  StepLR(Optimizer& optimizer, StepLROptions options);
  StepLROptions options;

 protected:
  std::vector<double> get_lr() override;
};

// lr *= gamma at each milestone epoch (a milestone listed twice decays twice).
struct MultiStepLROptions {
  std::vector<int64_t> milestones;
  double gamma = 0.1;
};
class MultiStepLR final : public LRScheduler {
 public:
  MultiStepLR(Optimizer& optimizer, MultiStepLROptions options);
  MultiStepLROptions options;

 protected:
  std::vector<double> get_lr() override;
};

// lr = lr0 * gamma^t: the learning rate decays by gamma every epoch.
struct ExponentialLROptions {
  double gamma = 0.1;
};
class ExponentialLR final : public LRScheduler {
 public:
  ExponentialLR(Optimizer& optimizer, ExponentialLROptions options);
  ExponentialLROptions options;

 protected:
  std::vector<double> get_lr() override;
};

// lr follows eta_min + (lr0 - eta_min)(1 + cos(pi t / T_max)) / 2, computed with PyTorch's recursive
// formula (so the printed values agree) and continuing as a cosine wave past T_max, as PyTorch does.
struct CosineAnnealingLROptions {
  int64_t T_max = 1;
  double eta_min = 0;
};
class CosineAnnealingLR final : public LRScheduler {
 public:
  CosineAnnealingLR(Optimizer& optimizer, CosineAnnealingLROptions options);
  CosineAnnealingLROptions options;

 protected:
  std::vector<double> get_lr() override;
};

// Linear warmup from 0 to the group's lr over warmup_steps, then a cosine from lr down to min_lr at
// total_steps (held there after):
//   t < warmup: lr * t / warmup;   else: min_lr + (lr - min_lr)(1 + cos(pi (t - warmup) / (total - warmup))) / 2
struct LinearWarmupCosineOptions {
  int64_t warmup_steps = 0;
  int64_t total_steps = 1;
  double min_lr = 0;
};
class LinearWarmupCosine final : public LRScheduler {
 public:
  LinearWarmupCosine(Optimizer& optimizer, LinearWarmupCosineOptions options);
  LinearWarmupCosineOptions options;

 protected:
  std::vector<double> get_lr() override;
};

// The 1cycle policy: the lr rises from max_lr / div_factor to max_lr over pct_start of total_steps, then
// anneals to max_lr / (div_factor * final_div_factor); with cycle_momentum the optimizer's momentum (or
// Adam's beta1) moves the opposite way between max_momentum and base_momentum. Stepping more than
// total_steps times throws, as in PyTorch.
struct OneCycleLROptions {
  std::vector<double> max_lr;  // one value for every group, or one per group
  int64_t total_steps = 0;      // or 0 and epochs * steps_per_epoch
  int64_t epochs = 0;
  int64_t steps_per_epoch = 0;
  double pct_start = 0.3;
  std::string anneal_strategy = "cos";  // or "linear"
  bool cycle_momentum = true;
  double base_momentum = 0.85;
  double max_momentum = 0.95;
  double div_factor = 25;
  double final_div_factor = 1e4;
  bool three_phase = false;  // rise, fall back to the initial lr symmetrically, then anneal to the minimum
};
class OneCycleLR final : public LRScheduler {
 public:
  OneCycleLR(Optimizer& optimizer, OneCycleLROptions options);
  OneCycleLROptions options;

 protected:
  std::vector<double> get_lr() override;

 private:
  struct Phase {
    double end_step;
    int start_lr, end_lr, start_mom, end_mom;  // 0 initial, 1 max, 2 min (lr); 0 max, 1 base (momentum)
  };
  std::vector<Phase> phases_;
  std::vector<double> initial_lrs_, max_lrs_, min_lrs_;
};

// Lowers the lr by `factor` when a metric has stopped improving for `patience` epochs, like
// torch.optim.lr_scheduler.ReduceLROnPlateau.  sched.step(val_loss) once per epoch.
struct ReduceLROnPlateauOptions {
  std::string mode = "min";  // "min": lower is better; "max": higher is better
  double factor = 0.1;
  int64_t patience = 10;
  double threshold = 1e-4;
  std::string threshold_mode = "rel";  // "rel": beyond best * (1 -/+ threshold); "abs": best -/+ threshold
  int64_t cooldown = 0;
  std::vector<double> min_lr = {0.0};  // one value for every group, or one per group
  double eps = 1e-8;                   // changes smaller than this are not applied
};
class ReduceLROnPlateau {
 public:
  ReduceLROnPlateau(Optimizer& optimizer, ReduceLROnPlateauOptions options = {});
  void step(double metric);
  const std::vector<double>& get_last_lr() const { return last_lr_; }
  int64_t last_epoch() const { return last_epoch_; }
  int64_t num_bad_epochs() const { return num_bad_epochs_; }
  double best() const { return best_; }

  // scalars: "last_epoch", "num_bad_epochs", "cooldown_counter" and "best" (absent while no metric is in).
  StateDict state_dict() const;
  void load_state_dict(const StateDict& sd);

  ReduceLROnPlateauOptions options;

 private:
  bool is_better(double a, double best) const;
  double worst() const;

  Optimizer& optimizer_;
  std::vector<double> min_lrs_;
  double best_;
  int64_t num_bad_epochs_ = 0, cooldown_counter_ = 0, last_epoch_ = 0;
  std::vector<double> last_lr_;
};

}  // namespace loom::optim
