// RMSprop's and Adagrad's updates, element by element in the parameter's type and in the order of torch
// 1.13's single-tensor implementations. Buffers are created on first use, so options changed later (a
// scheduler switching momentum on) find their buffer zero-initialised, as a fresh PyTorch state would be.
#include "loom/optim/rmsprop.h"

#include <cmath>

#include "loom/autograd/grad_mode.h"
#include "loom/ops/creation.h"
#include "loom/optim/update.h"

namespace loom::optim {

void RMSpropOptions::check() const {
  LOOM_CHECK(lr >= 0, "RMSprop: invalid learning rate ", lr);
  LOOM_CHECK(eps >= 0, "RMSprop: invalid epsilon value ", eps);
  LOOM_CHECK(momentum >= 0, "RMSprop: invalid momentum value ", momentum);
  LOOM_CHECK(weight_decay >= 0, "RMSprop: invalid weight_decay value ", weight_decay);
  LOOM_CHECK(alpha >= 0, "RMSprop: invalid alpha value ", alpha);
}

void RMSprop::step() {
  NoGradGuard ng;
  for (auto& group : groups_) {
    const RMSpropOptions o = group.options;
    for (Tensor& p : group.params) {
      Tensor g = detail::step_grad(p, "RMSprop");
      if (!g.defined()) continue;
      ParamState& st = state_for(p);
      st.step += 1;
      if (!st.buffers[0].defined()) st.buffers[0] = detail::zero_buffer(p);
      if (o.momentum > 0 && !st.buffers[1].defined()) st.buffers[1] = detail::zero_buffer(p);
      if (o.centered && !st.buffers[2].defined()) st.buffers[2] = detail::zero_buffer(p);
      detail::update(p, g,
                     OptimizerUpdate{.kind = OptimizerKind::RMSprop, .lr = o.lr, .weight_decay = o.weight_decay,
                                     .eps = o.eps, .momentum = o.momentum, .alpha = o.alpha, .centered = o.centered,
                                     .maximize = o.maximize},
                     st.buffers[0], o.momentum > 0 ? st.buffers[1] : Tensor(), o.centered ? st.buffers[2] : Tensor());
    }
  }
}

void AdagradOptions::check() const {
  LOOM_CHECK(lr >= 0, "Adagrad: invalid learning rate ", lr);
  LOOM_CHECK(lr_decay >= 0, "Adagrad: invalid lr_decay value ", lr_decay);
  LOOM_CHECK(weight_decay >= 0, "Adagrad: invalid weight_decay value ", weight_decay);
  LOOM_CHECK(initial_accumulator_value >= 0, "Adagrad: invalid initial_accumulator_value value ",
             initial_accumulator_value);
  LOOM_CHECK(eps >= 0, "Adagrad: invalid epsilon value ", eps);
}

void Adagrad::step() {
  NoGradGuard ng;
  for (auto& group : groups_) {
    const AdagradOptions o = group.options;
    for (Tensor& p : group.params) {
      Tensor g = detail::step_grad(p, "Adagrad");
      if (!g.defined()) continue;
      ParamState& st = state_for(p);
      if (!st.buffers[0].defined())
        st.buffers[0] = full(p.shape(), o.initial_accumulator_value, {.dtype = p.dtype(), .device = p.device()});
      st.step += 1;
      const double clr = o.lr / (1 + (st.step - 1) * o.lr_decay);
      detail::update(p, g,
                     OptimizerUpdate{.kind = OptimizerKind::Adagrad, .lr = clr, .weight_decay = o.weight_decay,
                                     .eps = o.eps, .maximize = o.maximize},
                     st.buffers[0]);
    }
  }
}

}  // namespace loom::optim
