// Adam and AdamW, like torch.optim.Adam / torch.optim.AdamW (PyTorch 1.13 single-tensor update rule).
//   optim::AdamW opt(model.parameters(), {.lr = 3e-4, .betas = {0.9, 0.95}, .weight_decay = 0.1});
//   loss.backward();  opt.step();  opt.zero_grad();
#pragma once
#include "loom/optim/optimizer.h"

namespace loom::optim {

// Adam: weight decay is L2, added to the gradient before the moments.
struct AdamOptions {
  static constexpr const char* kName = "Adam";
  double lr = 1e-3;
  std::pair<double, double> betas = {0.9, 0.999};
  double eps = 1e-8;
  double weight_decay = 0;
  bool amsgrad = false;
  bool maximize = false;

  void check() const;
  template <class F> void visit(F&& f) {
    f("lr", lr), f("betas.0", betas.first), f("betas.1", betas.second), f("eps", eps);
    f("weight_decay", weight_decay), f("amsgrad", amsgrad), f("maximize", maximize);
  }
};

// AdamW: weight decay is decoupled, p *= 1 - lr * weight_decay before the Adam step.
struct AdamWOptions {
  static constexpr const char* kName = "AdamW";
  double lr = 1e-3;
  std::pair<double, double> betas = {0.9, 0.999};
  double eps = 1e-8;
  double weight_decay = 1e-2;
  bool amsgrad = false;
  bool maximize = false;

  void check() const;
  template <class F> void visit(F&& f) {
    f("lr", lr), f("betas.0", betas.first), f("betas.1", betas.second), f("eps", eps);
    f("weight_decay", weight_decay), f("amsgrad", amsgrad), f("maximize", maximize);
  }
};

// m = b1 m + (1 - b1) g;  v = b2 v + (1 - b2) g^2;  (amsgrad: vmax = max(vmax, v), used for v)
// p -= lr / (1 - b1^t) * m / (sqrt(v) / sqrt(1 - b2^t) + eps).   State: exp_avg, exp_avg_sq, max_exp_avg_sq.
class Adam : public OptimizerBase<AdamOptions> {
 public:
  explicit Adam(std::vector<Tensor> params, AdamOptions options = {}) : OptimizerBase({{std::move(params), options}}) {}
  explicit Adam(std::vector<ParamGroup<AdamOptions>> groups) : OptimizerBase(std::move(groups)) {}

  void step() override;
  bool has_momentum() const override { return true; }
  double get_momentum(size_t group) const override { return group_at(group).options.betas.first; }
  void set_momentum(double m, size_t group) override { group_at(group).options.betas.first = m; }

 protected:
  std::vector<std::string> buffer_names() const override { return {"exp_avg", "exp_avg_sq", "max_exp_avg_sq"}; }
};

class AdamW : public OptimizerBase<AdamWOptions> {
 public:
  explicit AdamW(std::vector<Tensor> params, AdamWOptions options = {})
      : OptimizerBase({{std::move(params), options}}) {}
  explicit AdamW(std::vector<ParamGroup<AdamWOptions>> groups) : OptimizerBase(std::move(groups)) {}

  void step() override;
  bool has_momentum() const override { return true; }
  double get_momentum(size_t group) const override { return group_at(group).options.betas.first; }
  void set_momentum(double m, size_t group) override { group_at(group).options.betas.first = m; }

 protected:
  std::vector<std::string> buffer_names() const override { return {"exp_avg", "exp_avg_sq", "max_exp_avg_sq"}; }
};

}  // namespace loom::optim
