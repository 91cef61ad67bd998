// Adam and AdamW share one update loop; they differ only in where the weight decay goes. The element math
// follows torch 1.13's _single_tensor_adam(w) op by op, in the parameter's type, with the bias corrections
// computed in double from the step count as Python does.
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
  detail::update(p, O::kName, [&]<class T>(T* P, int64_t n) {
    const T* G = g.data<T>();
    T* M = st.buffers[0].data<T>();
    T* V = st.buffers[1].data<T>();
    T* VM = o.amsgrad ? st.buffers[2].data<T>() : nullptr;
    const T tb1 = T(b1), tb2 = T(b2), c1 = T(1 - b1), c2 = T(1 - b2), eps = T(o.eps), wd = T(o.weight_decay);
    const T shrink = T(1 - o.lr * o.weight_decay), neg_step = T(-step_size), bc2 = T(bc2_sqrt);
    const bool maximize = o.maximize, l2 = !decoupled && o.weight_decay != 0, dec = decoupled;
    // Values stay in registers and amsgrad is a compile-time branch, so the loop vectorises.
    auto run = [&]<bool kAmsgrad>() {
      detail::parallel_for(n, [=](int64_t i) {
        T p = P[i], gi = maximize ? -G[i] : G[i];
        if (dec) p = p * shrink;
        if (l2) gi = gi + wd * p;
        const T m = M[i] * tb1 + c1 * gi;
        T v = V[i] * tb2 + c2 * gi * gi;
        M[i] = m, V[i] = v;
        if constexpr (kAmsgrad) v = VM[i] = std::max(VM[i], v);
        P[i] = p + neg_step * (m / (std::sqrt(v) / bc2 + eps));
      });
    };
    if (VM) run.template operator()<true>();
    else run.template operator()<false>();
  });
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
