// Backend::optimizer_update on the CPU: every optimizer's fused update, one loop over raw elements per parameter
// in the parameter's own float type, so a step makes no temporary tensors. The element math follows torch 1.13's
// single-tensor implementations op by op (so float32 results round the same way).
#include <algorithm>
#include <cmath>

#include "loom/backend/cpu/cpu_backend.h"
#include "loom/core/dispatch.h"

namespace loom::cpu {

namespace {

// Runs f(i) for i in [0, n); in parallel once a tensor is large enough to pay for waking the threads.
template <class F>
void parallel_for(int64_t n, const F& f) {
#pragma omp parallel if (n >= 32768)
  {
    // A thread-local copy: its captures become locals the compiler keeps in registers, which lets it
    // vectorise the loop (through the shared closure it must reload them after every store).
    const F local = f;
#pragma omp for schedule(static)
    for (int64_t i = 0; i < n; ++i) local(i);
  }
}

template <class T>
T* ptr(const Tensor& t) { return t.defined() ? static_cast<T*>(t.raw_data()) : nullptr; }

template <class T>
void sgd(const OptimizerUpdate& o, T* P, const T* G, T* B, int64_t n) {
  const T wd = T(o.weight_decay), mom = T(o.momentum), keep = T(1 - o.dampening), neg_lr = T(-o.lr);
  const bool maximize = o.maximize, nesterov = o.nesterov, decay = o.weight_decay != 0, first = o.first;
  parallel_for(n, [=](int64_t i) {
    T d = maximize ? -G[i] : G[i];
    if (decay) d = d + wd * P[i];
    if (B) {
      const T b = first ? d : B[i] * mom + keep * d;
      B[i] = b;
      d = nesterov ? d + mom * b : b;
    }
    P[i] = P[i] + neg_lr * d;
  });
}

// Adam and AdamW differ only in where the weight decay goes (`decoupled`: on the parameter).
template <class T>
void adam(const OptimizerUpdate& o, T* P, const T* G, T* M, T* V, T* VM, int64_t n) {
  const double b1 = o.beta1, b2 = o.beta2;
  const T tb1 = T(b1), tb2 = T(b2), c1 = T(1 - b1), c2 = T(1 - b2), eps = T(o.eps), wd = T(o.weight_decay);
  const T shrink = T(1 - o.lr * o.weight_decay), neg_step = T(-o.step_size), bc2 = T(o.bias_correction2_sqrt);
  const bool maximize = o.maximize, l2 = !o.decoupled && o.weight_decay != 0, dec = o.decoupled;
  // Values stay in registers and amsgrad is a compile-time branch, so the loop vectorises.
  auto run = [&]<bool kAmsgrad>() {
    parallel_for(n, [=](int64_t i) {
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
}

template <class T>
void rmsprop(const OptimizerUpdate& o, T* P, const T* Gr, T* SQ, T* B, T* GA, int64_t n) {
  const T alpha = T(o.alpha), keep = T(1 - o.alpha), eps = T(o.eps), wd = T(o.weight_decay);
  const T mom = T(o.momentum), neg_lr = T(-o.lr);
  const bool maximize = o.maximize, decay = o.weight_decay != 0;
  // centered and momentum as compile-time branches keep the loop free of conditional stores (vectorised).
  auto run = [&]<bool kCentered, bool kMomentum>() {
    parallel_for(n, [=](int64_t i) {
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
}

// lr is Adagrad's decayed rate lr / (1 + (step - 1) * lr_decay).
template <class T>
void adagrad(const OptimizerUpdate& o, T* P, const T* Gr, T* S, int64_t n) {
  const T eps = T(o.eps), wd = T(o.weight_decay), neg_clr = T(-o.lr);
  const bool maximize = o.maximize, decay = o.weight_decay != 0;
  parallel_for(n, [=](int64_t i) {
    T gi = maximize ? -Gr[i] : Gr[i];
    if (decay) gi = gi + wd * P[i];
    S[i] = S[i] + gi * gi;
    const T denom = std::sqrt(S[i]) + eps;
    P[i] = P[i] + neg_clr * (gi / denom);
  });
}

}  // namespace

void CpuBackend::optimizer_update(const OptimizerUpdate& o, Tensor& p, const Tensor& g, Tensor& s0, Tensor& s1,
                                  Tensor& s2) {
  dispatch_float(p.dtype(), "optimizer step", [&]<class T>() {
    T* P = ptr<T>(p);
    const T* G = ptr<T>(g);
    const int64_t n = p.numel();
    switch (o.kind) {
      case OptimizerKind::SGD: return sgd<T>(o, P, G, ptr<T>(s0), n);
      case OptimizerKind::Adam: return adam<T>(o, P, G, ptr<T>(s0), ptr<T>(s1), ptr<T>(s2), n);
      case OptimizerKind::RMSprop: return rmsprop<T>(o, P, G, ptr<T>(s0), ptr<T>(s1), ptr<T>(s2), n);
      case OptimizerKind::Adagrad: return adagrad<T>(o, P, G, ptr<T>(s0), n);
    }
  });
}

}  // namespace loom::cpu
