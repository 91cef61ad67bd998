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
      detail::update(p, "RMSprop", [&]<class T>(T* P, int64_t n) {
        const T* Gr = g.data<T>();
        T* SQ = st.buffers[0].data<T>();
        T* B = o.momentum > 0 ? st.buffers[1].data<T>() : nullptr;
        T* GA = o.centered ? st.buffers[2].data<T>() : nullptr;
        const T alpha = T(o.alpha), keep = T(1 - o.alpha), eps = T(o.eps), wd = T(o.weight_decay);
        const T mom = T(o.momentum), neg_lr = T(-o.lr);
        const bool maximize = o.maximize, decay = o.weight_decay != 0;
        // centered and momentum as compile-time branches keep the loop free of conditional stores (vectorised).
        auto run = [&]<bool kCentered, bool kMomentum>() {
          detail::parallel_for(n, [=](int64_t i) {
            const T p = P[i];
            T gi = maximize ? -Gr[i] : Gr[i];
            if (decay) gi = gi + wd * p;
            const T sq = SQ[i] * alpha + keep * gi * gi;
            SQ[i] = sq;
            T avg;
            if constexpr (kCentered) {
              const T ga = GA[i] * alpha + keep * gi;
              GA[i] = ga;
              avg = std::sqrt(sq + T(-1) * ga * ga);
            } else {
              avg = std::sqrt(sq);
            }
            avg = avg + eps;
            if constexpr (kMomentum) {
              const T b = B[i] * mom + gi / avg;
              B[i] = b;
              P[i] = p + neg_lr * b;
            } else {
              P[i] = p + neg_lr * (gi / avg);
            }
          });
        };
        if (GA && B) run.template operator()<true, true>();
        else if (GA) run.template operator()<true, false>();
        else if (B) run.template operator()<false, true>();
        else run.template operator()<false, false>();
      });
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
      detail::update(p, "Adagrad", [&]<class T>(T* P, int64_t n) {
        const T* Gr = g.data<T>();
        T* S = st.buffers[0].data<T>();
        const T eps = T(o.eps), wd = T(o.weight_decay), neg_clr = T(-clr);
        const bool maximize = o.maximize, decay = o.weight_decay != 0;
        detail::parallel_for(n, [=](int64_t i) {
          T gi = maximize ? -Gr[i] : Gr[i];
          if (decay) gi = gi + wd * P[i];
          S[i] = S[i] + gi * gi;
          const T denom = std::sqrt(S[i]) + eps;
          P[i] = P[i] + neg_clr * (gi / denom);
        });
      });
    }
  }
}

}  // namespace loom::optim
