// DP-SGD through train::Trainer. The loop itself is the Trainer's: this file only says how a DP step gets its
// batch and its gradients, what a row adds, and what a checkpoint must hold besides the Trainer's own state.
// The accountant is restored from its saved RDP values rather than re-run from the step count, so ε after a
// resume is the same double, and a run whose σ or q changed on the way could still be accounted for.
#include "loom/privacy/dp_fit.h"

#include <chrono>
#include <cmath>
#include <memory>

namespace loom::privacy {

train::BatchSource dp_batches(DpSgd& dp, const data::Dataset& train) {
  return [&dp, &train] {
    const std::vector<int64_t> idx = dp.sample(train.size());
    return idx.empty() ? data::Batch{} : train.get_batch(idx);
  };
}

std::map<std::string, double> DpAccountantState::state() const {
  const RdpAccountant& acc = dp_.accountant();
  std::map<std::string, double> s = {{"steps", double(acc.steps())}, {"orders", double(acc.rdp().size())}};
  for (size_t i = 0; i < acc.rdp().size(); ++i) s["rdp." + std::to_string(i)] = acc.rdp()[i];
  return s;
}

void DpAccountantState::load_state(const std::map<std::string, double>& s) {
  auto at = [&](const std::string& k) {
    auto it = s.find(k);
    LOOM_CHECK(it != s.end(), "the DP accountant state has no ", k);
    return it->second;
  };
  const double n = at("orders"), steps = at("steps");
  LOOM_CHECK(n == double(dp_.accountant().orders().size()), "the DP accountant state has ", n,
             " orders, this run's accountant ", dp_.accountant().orders().size());
  LOOM_CHECK(steps >= 0 && steps == std::floor(steps), "the DP accountant state has ", steps, " steps");
  std::vector<double> rdp(dp_.accountant().orders().size());
  for (size_t i = 0; i < rdp.size(); ++i) rdp[i] = at("rdp." + std::to_string(i));
  dp_.accountant().restore(rdp, int64_t(steps));
}

train::FitOptions dp_fit_options(DpSgd& dp, const data::Dataset& train, train::FitOptions base, DpFitOptions o) {
  LOOM_CHECK(!base.batch_grads && !base.row_values,
             "dp_fit_options: the base options already set batch_grads or row_values (DP-SGD sets them)");
  LOOM_CHECK(o.delta > 0 && o.delta < 1, "dp_fit_options: delta must be in (0, 1), got ", o.delta);
  LOOM_CHECK(o.loss != nullptr, "dp_fit_options: the loss is empty");
  const int64_t n = train.size();
  LOOM_CHECK(n > 0, "dp_fit_options: the training set is empty");
  base.batch_grads = [&dp, n, loss = o.loss, seconds = o.grad_seconds](const data::Batch& b) {
    const auto t0 = std::chrono::steady_clock::now();
    PerSampleGrads ps = dp.private_grads(b.data, b.target, loss, n);
    if (seconds) *seconds += std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
    const int64_t samples = b.data.defined() ? b.data.size(0) : 0;
    return train::BatchGrads{.loss = samples > 0 ? ps.loss_sum / double(samples) : 0.0,
                             .output = samples > 0 ? ps.output : Tensor(),
                             .samples = samples};
  };
  const double per_epoch = double(std::max<int64_t>(1, std::llround(1.0 / dp.options().sample_rate)));
  base.row_values = [&dp, delta = o.delta, per_epoch](train::Logs& row) {
    row["epsilon"] = dp.epsilon(delta);
    row["epoch"] = row.at("step") / per_epoch;
  };
  base.row_mean_loss = true;
  base.generators.push_back(&dp.generator());
  base.callbacks.push_back(std::make_shared<DpAccountantState>(dp));
  return base;
}

}  // namespace loom::privacy
