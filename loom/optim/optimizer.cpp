// The options-independent half of the optimizers: zero_grad, per-parameter state and state dicts.
#include "loom/optim/optimizer.h"

#include <set>

#include "loom/autograd/grad_mode.h"
#include "loom/ops/creation.h"
#include "loom/optim/update.h"

namespace loom::optim {

namespace detail {

Tensor step_grad(const Tensor& p, const char* opt) {
  Tensor g = p.grad();
  if (!g.defined()) return g;
  LOOM_CHECK(g.shape() == p.shape(), opt, ": the gradient of shape ", g.shape(),
             " does not match its parameter's shape ", p.shape());
  if (g.dtype() != p.dtype()) g = g.to(p.dtype());
  return g.is_contiguous() ? g : g.contiguous();
}

Tensor zero_buffer(const Tensor& p) { return zeros(p.shape(), {.dtype = p.dtype(), .device = p.device()}); }

}  // namespace detail

void Optimizer::zero_grad(bool set_to_none) {
  NoGradGuard ng;
  for (size_t g = 0; g < num_param_groups(); ++g)
    for (const Tensor& p : params(g)) {
      Tensor grad = p.grad();
      if (!grad.defined()) continue;
      if (set_to_none) {
        Tensor(p).set_grad(Tensor());
      } else {
        // A grad with history (from create_graph) is cut loose first, as PyTorch does.
        if (!grad.is_leaf()) grad.detach_();
        grad.zero_();
      }
    }
}

void Optimizer::set_lr(double lr) {
  for (size_t g = 0; g < num_param_groups(); ++g) set_lr(lr, g);
}

std::vector<double> Optimizer::get_lrs() const {
  std::vector<double> r;
  for (size_t g = 0; g < num_param_groups(); ++g) r.push_back(get_lr(g));
  return r;
}

double Optimizer::get_momentum(size_t) const { LOOM_FAIL(name(), ": this optimizer has no momentum to cycle"); }
void Optimizer::set_momentum(double, size_t) { LOOM_FAIL(name(), ": this optimizer has no momentum to cycle"); }

const ParamState* Optimizer::state(const Tensor& param) const {
  auto it = state_.find(param.impl());
  return it == state_.end() ? nullptr : &it->second;
}

ParamState& Optimizer::state_for(const Tensor& p) {
  ParamState& st = state_[p.impl()];
  if (st.buffers.empty()) st.buffers.resize(buffer_names().size());
  return st;
}

void Optimizer::check_new_params(const std::vector<Tensor>& params) const {
  std::set<const TensorImpl*> seen;
  for (size_t g = 0; g < num_param_groups(); ++g)
    for (const Tensor& p : this->params(g)) seen.insert(p.impl());
  for (const Tensor& p : params) {
    LOOM_CHECK(p.defined(), name(), ": a parameter is an undefined tensor");
    LOOM_CHECK(is_floating(p.dtype()) && p.dtype() != DType::bf16 && p.dtype() != DType::f16, name(),
               ": parameters must be float32 or float64, got ", p.dtype());
    LOOM_CHECK(p.is_leaf(), name(), ": can't optimize a non-leaf tensor (one computed from others)");
    LOOM_CHECK(seen.insert(p.impl()).second, name(), ": a parameter appears more than once (in one group or in two)");
  }
}

StateDict Optimizer::state_dict() const {
  StateDict sd;
  const std::vector<std::string> names = buffer_names();
  size_t idx = 0;
  for (size_t g = 0; g < num_param_groups(); ++g) {
    const std::string gp = "param_groups." + std::to_string(g) + ".";
    for (const auto& [k, v] : group_options(g)) sd.scalars[gp + k] = v;
    sd.scalars[gp + "num_params"] = double(params(g).size());
    for (const Tensor& p : params(g)) {
      const std::string sp = "state." + std::to_string(idx++) + ".";
      const ParamState* st = state(p);
      if (!st) continue;
      sd.scalars[sp + "step"] = st->step;
      for (size_t b = 0; b < names.size(); ++b)
        if (st->buffers[b].defined()) sd.tensors.emplace_back(sp + names[b], st->buffers[b]);
    }
  }
  return sd;
}

void Optimizer::load_state_dict(const StateDict& sd) {
  size_t groups = 0;
  while (sd.has("param_groups." + std::to_string(groups) + ".num_params")) ++groups;
  LOOM_CHECK(groups == num_param_groups(), name(), ": load_state_dict: the state dict has ", groups,
             " param groups, the optimizer ", num_param_groups());
  for (size_t g = 0; g < groups; ++g) {
    const std::string gp = "param_groups." + std::to_string(g) + ".";
    const auto n = size_t(sd.scalar(gp + "num_params"));
    LOOM_CHECK(n == params(g).size(), name(), ": load_state_dict: param group ", g, " has ", n,
               " params in the state dict and ", params(g).size(), " in the optimizer");
  }
  for (size_t g = 0; g < groups; ++g) {
    const std::string gp = "param_groups." + std::to_string(g) + ".";
    std::map<std::string, double> values;
    for (const auto& [k, v] : sd.scalars)
      if (k.rfind(gp, 0) == 0) values[k.substr(gp.size())] = v;
    set_group_options(g, values);
  }
  NoGradGuard ng;
  state_.clear();
  const std::vector<std::string> names = buffer_names();
  size_t idx = 0;
  for (size_t g = 0; g < groups; ++g)
    for (const Tensor& p : params(g)) {
      const std::string sp = "state." + std::to_string(idx++) + ".";
      if (!sd.has(sp + "step")) continue;
      ParamState& st = state_for(p);
      st.step = sd.scalar(sp + "step");
      for (size_t b = 0; b < names.size(); ++b) {
        Tensor t = sd.tensor(sp + names[b]);
        if (!t.defined()) continue;
        LOOM_CHECK(t.shape() == p.shape(), name(), ": load_state_dict: '", sp + names[b], "' has shape ", t.shape(),
                   " but its parameter has shape ", p.shape());
        Tensor copy = detail::zero_buffer(p);
        copy.copy_(t);  // converts to the parameter's dtype, as PyTorch casts state to the param
        st.buffers[b] = copy;
      }
    }
}

}  // namespace loom::optim
