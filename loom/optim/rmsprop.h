// RMSprop and Adagrad, like torch.optim.RMSprop / torch.optim.Adagrad (PyTorch 1.13 update rules).
//   optim::RMSprop opt(model.parameters(), {.lr = 1e-3, .momentum = 0.9, .centered = true});
//   optim::Adagrad ada(model.parameters(), {.lr = 0.1, .lr_decay = 1e-4});
#pragma once
#include "loom/optim/optimizer.h"

namespace loom::optim {

struct RMSpropOptions {
  static constexpr const char* kName = "RMSprop";
  double lr = 1e-2;
  double alpha = 0.99;  // smoothing constant of the squared-gradient average
  double eps = 1e-8;
  double weight_decay = 0;
  double momentum = 0;
  bool centered = false;  // divide by the variance estimate sqrt(E[g^2] - E[g]^2) instead of sqrt(E[g^2])
  bool maximize = false;

  void check() const;
  template <class F> void visit(F&& f) {
    f("lr", lr), f("alpha", alpha), f("eps", eps), f("weight_decay", weight_decay), f("momentum", momentum);
    f("centered", centered), f("maximize", maximize);
  }
};

// sq = alpha sq + (1 - alpha) g^2;  avg = sqrt(sq [- ga^2 when centered]) + eps;
// momentum: buf = momentum buf + g / avg, p -= lr buf;  else p -= lr g / avg.
// State: square_avg, momentum_buffer, grad_avg.
class RMSprop : public OptimizerBase<RMSpropOptions> {
 public:
  explicit RMSprop(std::vector<Tensor> params, RMSpropOptions options = {})
      : OptimizerBase({{std::move(params), options}}) {}
  explicit RMSprop(std::vector<ParamGroup<RMSpropOptions>> groups) : OptimizerBase(std::move(groups)) {}

  void step() override;
  bool has_momentum() const override { return true; }
  double get_momentum(size_t group) const override { return group_at(group).options.momentum; }
  void set_momentum(double m, size_t group) override { group_at(group).options.momentum = m; }

 protected:
  std::vector<std::string> buffer_names() const override { return {"square_avg", "momentum_buffer", "grad_avg"}; }
};

struct AdagradOptions {
  static constexpr const char* kName = "Adagrad";
  double lr = 1e-2;
  double lr_decay = 0;
  double weight_decay = 0;
  double initial_accumulator_value = 0;
  double eps = 1e-10;
  bool maximize = false;

  void check() const;
  template <class F> void visit(F&& f) {
    f("lr", lr), f("lr_decay", lr_decay), f("weight_decay", weight_decay);
    f("initial_accumulator_value", initial_accumulator_value), f("eps", eps), f("maximize", maximize);
  }
};

// sum += g^2;  p -= lr / (1 + (t - 1) lr_decay) * g / (sqrt(sum) + eps).   State: sum.
class Adagrad : public OptimizerBase<AdagradOptions> {
 public:
  explicit Adagrad(std::vector<Tensor> params, AdagradOptions options = {})
      : OptimizerBase({{std::move(params), options}}) {}
  explicit Adagrad(std::vector<ParamGroup<AdagradOptions>> groups) : OptimizerBase(std::move(groups)) {}

  void step() override;

 protected:
  std::vector<std::string> buffer_names() const override { return {"sum"}; }
};

}  // namespace loom::optim
