// Adam and AdamW share one fused update (Backend::optimizer_update); they differ only in where the weight decay
// goes. The element math follows torch 1.13's _single_tensor_adam(w) op by op, in the parameter's type, with the
// bias corrections computed here in double from the step count as Python does.
#include "loom/optim/adam.h"

#include <cmath>

#include "loom/autograd/grad_mode.h"
#include "loom/optim/update.h"

namespace loom::optim {

namespace {

template <class O>
void check_adam(const O& o) {
  LOOM_CHECK(o.lr >= 0, O::kName, ": invalid learning rate ", o.lr);
  LOOM_CHECK(o.eps >= 0, O::kName, ": invalid epsilon value ", o.eps);
  LOOM_CHECK(o.betas.first >= 0 && o.betas.first < 1, O::kName, ": invalid beta parameter at index 0: ", o.betas.first);
  LOOM_CHECK(o.betas.second >= 0 && o.betas.second < 1, O::kName, ": invalid beta parameter at index 1: ",
             o.betas.second);
  LOOM_CHECK(o.weight_decay >= 0, O::kName, ": invalid weight_decay value ", o.weight_decay);
}

// One parameter's update. `decoupled` selects AdamW's decay (on the parameter) over Adam's (on the gradient).
template <class O>
void adam_update(Tensor& p, const Tensor& g, ParamState& st, const O& o, bool decoupled) {
  if (!st.buffers[0].defined()) st.buffers[0] = detail::zero_buffer(p), st.buffers[1] = detail::zero_buffer(p);
  if (o.amsgrad && !st.buffers[2].defined()) st.buffers[2] = detail::zero_buffer(p);
  st.step += 1;
  const double b1 = o.betas.first, b2 = o.betas.second;
  const double step_size = o.lr / (1 - std::pow(b1, st.step));
  const double bc2_sqrt = std::sqrt(1 - std::pow(b2, st.step));
  detail::update(p, g,
                 OptimizerUpdate{.kind = OptimizerKind::Adam, .lr = o.lr, .weight_decay = o.weight_decay, .eps = o.eps,
                                 .beta1 = b1, .beta2 = b2, .step_size = step_size, .bias_correction2_sqrt = bc2_sqrt,
                                 .decoupled = decoupled, .amsgrad = o.amsgrad, .maximize = o.maximize},
                 st.buffers[0], st.buffers[1], o.amsgrad ? st.buffers[2] : Tensor());
}

}  // namespace

void AdamOptions::check() const { check_adam(*this); }
void AdamWOptions::check() const { check_adam(*this); }

void Adam::step() {
  NoGradGuard ng;
  for (auto& group : groups_)
    for (Tensor& p : group.params) {
      Tensor g = detail::step_grad(p, "Adam");
      if (g.defined()) adam_update(p, g, state_for(p), group.options, false);
    }
}

void AdamW::step() {
  NoGradGuard ng;
  for (auto& group : groups_)
    for (Tensor& p : group.params) {
      Tensor g = detail::step_grad(p, "AdamW");
      if (g.defined()) adam_update(p, g, state_for(p), group.options, true);
    }
}

}  // namespace loom::optim
