// SGD's update, element by element in the parameter's type, in the order torch 1.13's single-tensor
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
      detail::update(p, "SGD", [&]<class T>(T* P, int64_t n) {
        const T* G = g.data<T>();
        T* B = o.momentum != 0 ? buf.data<T>() : nullptr;
        const T wd = T(o.weight_decay), mom = T(o.momentum), keep = T(1 - o.dampening), neg_lr = T(-o.lr);
        const bool maximize = o.maximize, nesterov = o.nesterov, decay = o.weight_decay != 0;
        detail::parallel_for(n, [=](int64_t i) {
          T d = maximize ? -G[i] : G[i];
          if (decay) d = d + wd * P[i];
          if (B) {
            const T b = first ? d : B[i] * mom + keep * d;
            B[i] = b;
            d = nesterov ? d + mom * b : b;
          }
          P[i] = P[i] + neg_lr * d;
        });
      });
    }
  }
}

}  // namespace loom::optim
