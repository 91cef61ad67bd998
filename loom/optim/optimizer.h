// The optimizer base class, like torch.optim.Optimizer: param groups, zero_grad, step, state dicts.
//   optim::SGD opt(model.parameters(), {.lr = 0.1, .momentum = 0.9});
//   for (...) { opt.zero_grad(); loss_fn(model(x), y).backward(); opt.step(); }
//   optim::Adam two({{body_params, {.lr = 1e-4}}, {head_params, {.lr = 1e-3}}});  // one options set per group
#pragma once
#include <map>
#include <string>
#include <type_traits>
#include <unordered_map>
#include <utility>
#include <vector>

#include "loom/core/tensor.h"
#include "loom/optim/state_dict.h"

namespace loom::optim {

// What an optimizer keeps for one parameter: its buffers (slots named by buffer_names(); undefined until
// used) and the number of steps taken.
struct ParamState {
  std::vector<Tensor> buffers;
  double step = 0;
};

// Parameters that share hyper-parameters. O is the optimizer's options struct (SGDOptions, AdamOptions, ...).
template <class O>
struct ParamGroup {
  std::vector<Tensor> params;
  O options;
};

class Optimizer {
 public:
  virtual ~Optimizer() = default;
  Optimizer(const Optimizer&) = delete;  // schedulers and training loops hold references to it
  Optimizer& operator=(const Optimizer&) = delete;

  // One update of every parameter that has a .grad, without recording history. Parameters whose .grad is
  // undefined are skipped, as in PyTorch.
  virtual void step() = 0;
  // Zeroes every .grad in place, or drops it (set_to_none) so the next backward allocates a fresh one.
  void zero_grad(bool set_to_none = false);

  virtual const char* name() const = 0;
  virtual size_t num_param_groups() const = 0;
  virtual const std::vector<Tensor>& params(size_t group) const = 0;
  virtual double get_lr(size_t group = 0) const = 0;
  virtual void set_lr(double lr, size_t group) = 0;
  void set_lr(double lr);            // every group
  std::vector<double> get_lrs() const;  // one per group

  // The hyper-parameter that OneCycleLR cycles opposite to the lr: momentum (SGD, RMSprop) or betas.0
  // (Adam, AdamW). Optimizers without one answer false and throw from the accessors.
  virtual bool has_momentum() const { return false; }
  virtual double get_momentum(size_t group) const;
  virtual void set_momentum(double momentum, size_t group);

  // See state_dict.h for the keys. The tensors alias the live state (as PyTorch's do): clone them to keep a
  // snapshot while training goes on. load_state_dict copies, so the two optimizers never share buffers.
  StateDict state_dict() const;
  void load_state_dict(const StateDict& sd);

  // The state of one parameter, or nullptr before its first step.
  const ParamState* state(const Tensor& param) const;

 protected:
  Optimizer() = default;
  virtual std::vector<std::string> buffer_names() const = 0;
  virtual std::map<std::string, double> group_options(size_t group) const = 0;
  virtual void set_group_options(size_t group, const std::map<std::string, double>& values) = 0;
  // The state of p, created (with one empty slot per buffer name) on first use.
  ParamState& state_for(const Tensor& p);
  void check_new_params(const std::vector<Tensor>& params) const;

 private:
  std::unordered_map<const TensorImpl*, ParamState> state_;
};

// The part of an optimizer that depends on its options type. Each options struct O provides
//   static constexpr const char* kName;  void check() const;  template <class F> void visit(F&& f);
// where visit calls f("name", field) for every hyper-parameter (double or bool).
template <class O>
class OptimizerBase : public Optimizer {
 public:
  using Options = O;

  const char* name() const override { return O::kName; }
  size_t num_param_groups() const override { return groups_.size(); }
  const std::vector<Tensor>& params(size_t group) const override { return group_at(group).params; }
  double get_lr(size_t group = 0) const override { return group_at(group).options.lr; }
  void set_lr(double lr, size_t group) override { group_at(group).options.lr = lr; }
  using Optimizer::set_lr;

  std::vector<ParamGroup<O>>& param_groups() { return groups_; }
  const std::vector<ParamGroup<O>>& param_groups() const { return groups_; }
  void add_param_group(ParamGroup<O> group) {
    group.options.check();
    check_new_params(group.params);
    groups_.push_back(std::move(group));
  }

 protected:
  explicit OptimizerBase(std::vector<ParamGroup<O>> groups) {
    LOOM_CHECK(!groups.empty(), O::kName, ": optimizer got an empty parameter list");
    for (auto& g : groups) add_param_group(std::move(g));
  }

  ParamGroup<O>& group_at(size_t g) {
    LOOM_CHECK(g < groups_.size(), O::kName, ": param group ", g, " does not exist (", groups_.size(), " groups)");
    return groups_[g];
  }
  const ParamGroup<O>& group_at(size_t g) const { return const_cast<OptimizerBase*>(this)->group_at(g); }

  std::map<std::string, double> group_options(size_t group) const override {
    std::map<std::string, double> m;
    O o = group_at(group).options;
    o.visit([&](const char* key, auto& v) { m[key] = double(v); });
    return m;
  }
  void set_group_options(size_t group, const std::map<std::string, double>& values) override {
    O o = group_at(group).options;
    o.visit([&](const char* key, auto& v) {
      auto it = values.find(key);
      LOOM_CHECK(it != values.end(), O::kName, ": load_state_dict: param group ", group, " has no option '", key, "'");
      v = static_cast<std::remove_reference_t<decltype(v)>>(it->second);
    });
    o.check();
    groups_[group].options = o;
  }

  std::vector<ParamGroup<O>> groups_;
};

}  // namespace loom::optim
