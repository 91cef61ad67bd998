// DP-SGD as a mode of the one training loop (train::Trainer's step-driven fit): Poisson batches drawn from the
// DpSgd's generator, its private gradient (clipped per-sample gradients plus noise) in place of forward +
// backward, ε and the epoch in every metrics row, and the accountant's and the generator's state in every
// checkpoint, so a run resumed from one ends with the same weights and the same ε as a run never interrupted.
//   privacy::DpSgd dp(*model, {.noise_multiplier = 1.1, .max_grad_norm = 1, .sample_rate = 256.0 / n, .seed = 1});
//   train::Trainer t(*model, privacy::dp_fit_options(dp, *train_set, {.steps = 200, .optimizer = &opt}));
//   train::History h = t.fit(privacy::dp_batches(dp, *train_set));   // h.steps: step, loss, accuracy, epsilon, ...
#pragma once
#include <map>
#include <string>

#include "loom/data/dataset.h"
#include "loom/privacy/dp_sgd.h"
#include "loom/train/trainer.h"

namespace loom::privacy {

struct DpFitOptions {
  double delta = 1e-5;                   // the δ of the ε written in each row
  SumLossFn loss = cross_entropy_sum();  // summed over the batch's samples
  double* grad_seconds = nullptr;        // when set, the time spent in the private gradient steps is added here
};

// Each call draws the next Poisson sample of `train` (rate dp.options().sample_rate) from dp's generator: the
// batch of those samples, or an empty Batch when it drew none (the step then applies noise alone).
train::BatchSource dp_batches(DpSgd& dp, const data::Dataset& train);

// The accountant's state (steps and the RDP at each order) as a callback's, so checkpoints carry it.
class DpAccountantState final : public train::Callback {
 public:
  explicit DpAccountantState(DpSgd& dp) : dp_(dp) {}
  std::string name() const override { return "DpAccountant"; }
  std::map<std::string, double> state() const override;
  void load_state(const std::map<std::string, double>& s) override;

 private:
  DpSgd& dp_;
};

// `base` completed for DP-SGD over `train`: batch_grads is dp.private_grads (divided by the expected batch size
// q·|train|), dp's generator rides in the checkpoints beside the accountant's state, and each metrics row gets
// "epsilon" (at o.delta) and "epoch" (steps / round(1/q)) and, as its loss, the mean over the samples since
// the previous row. Refuses a base that already sets batch_grads or row_values. dp and train must outlive the
// options; the model is dp's.
train::FitOptions dp_fit_options(DpSgd& dp, const data::Dataset& train, train::FitOptions base,
                                 DpFitOptions o = {});

}  // namespace loom::privacy
