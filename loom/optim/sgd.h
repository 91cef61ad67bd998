// Stochastic gradient descent with momentum, like torch.optim.SGD (PyTorch 1.13 update rule).
//   optim::SGD opt(model.parameters(), {.lr = 0.1, .momentum = 0.9, .nesterov = true});
//   loss.backward();  opt.step();  opt.zero_grad();
#pragma once
#include "loom/optim/optimizer.h"

namespace loom::optim {

struct SGDOptions {
  static constexpr const char* kName = "SGD";
  double lr = -1;  // required, as in PyTorch (-1 means "not given")
  double momentum = 0;
  double dampening = 0;
  double weight_decay = 0;
  bool nesterov = false;  // needs momentum > 0 and dampening == 0
  bool maximize = false;

  void check() const;
  template <class F> void visit(F&& f) {
    f("lr", lr), f("momentum", momentum), f("dampening", dampening), f("weight_decay", weight_decay);
    f("nesterov", nesterov), f("maximize", maximize);
  }
};

// d = g + weight_decay * p;  buf = momentum * buf + (1 - dampening) * d  (buf = d on the first step);
// d = nesterov ? d + momentum * buf : buf;  p -= lr * d.     State: momentum_buffer.
class SGD : public OptimizerBase<SGDOptions> {
 public:
  SGD(std::vector<Tensor> params, SGDOptions options) : OptimizerBase({{std::move(params), options}}) {}
  explicit SGD(std::vector<ParamGroup<SGDOptions>> groups) : OptimizerBase(std::move(groups)) {}

  void step() override;
  bool has_momentum() const override { return true; }
  double get_momentum(size_t group) const override { return group_at(group).options.momentum; }
  void set_momentum(double m, size_t group) override { group_at(group).options.momentum = m; }

 protected:
  std::vector<std::string> buffer_names() const override { return {"momentum_buffer"}; }
};

}  // namespace loom::optim
