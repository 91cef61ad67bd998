// SGD's update (Backend::optimizer_update), element by element in the parameter's type, in the order torch 1.13's single-tensor
// implementation applies its in-place ops (so float32 results round the same way).
#include "loom/optim/sgd.h"

#include "loom/autograd/grad_mode.h"
#include "loom/optim/update.h"

namespace loom::optim {

void SGDOptions::check() const {
  LOOM_CHECK(lr != -1, "SGD: lr is required (PyTorch's SGD has no default learning rate)");
  LOOM_CHECK(lr >= 0, "SGD: invalid learning rate ", lr);
  LOOM_CHECK(momentum >= 0, "SGD: invalid momentum value ", momentum);
  LOOM_CHECK(weight_decay >= 0, "SGD: invalid weight_decay value ", weight_decay);
  LOOM_CHECK(!nesterov || (momentum > 0 && dampening == 0),
             "SGD: nesterov momentum requires a momentum and zero dampening");
}

void SGD::step() {
  NoGradGuard ng;
  for (auto& group : groups_) {
    const SGDOptions o = group.options;
    for (Tensor& p : group.params) {
      Tensor g = detail::step_grad(p, "SGD");
      if (!g.defined()) continue;
      ParamState& st = state_for(p);
      st.step += 1;
      Tensor& buf = st.buffers[0];
      const bool first = !buf.defined();
      if (o.momentum != 0 && first) buf = detail::zero_buffer(p);
      detail::update(p, g,
                     OptimizerUpdate{.kind = OptimizerKind::SGD, .lr = o.lr, .weight_decay = o.weight_decay,
                                     .momentum = o.momentum, .dampening = o.dampening, .nesterov = o.nesterov,
                                     .first = first, .maximize = o.maximize},
                     o.momentum != 0 ? buf : Tensor());
    }
  }
}

}  // namespace loom::optim
