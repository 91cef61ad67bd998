// Helpers the optimizers' step() share (internal to loom/optim). An update is one fused loop over raw
// elements per parameter, in the parameter's own float type, so a step makes no temporary tensors:
//   Tensor g = detail::step_grad(p, "SGD");  if (!g.defined()) continue;
//   detail::update(p, "SGD", [&]<class T>(T* P, int64_t n) { detail::parallel_for(n, [=](int64_t i) { ... }); });
#pragma once
#include "loom/core/dispatch.h"
#include "loom/core/tensor.h"

namespace loom::optim::detail {

// p's gradient as a contiguous tensor of p's dtype and shape, or undefined when p has none.
Tensor step_grad(const Tensor& p, const char* opt);

// A zero-filled contiguous buffer shaped like p (optimizer state).
Tensor zero_buffer(const Tensor& p);

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

// Calls f.template operator()<T>(data, numel) on p's elements (a contiguous copy that is written back when
// p itself is strided), then bumps p's version so autograd notices the in-place change.
template <class F>
void update(Tensor& p, const char* opt, F&& f) {
  Tensor w = p.is_contiguous() ? p : p.contiguous();
  dispatch_float(w.dtype(), opt, [&]<class T>() { f.template operator()<T>(w.template data<T>(), w.numel()); });
  if (w.is_same(p)) p.bump_version();
  else p.copy_(w);
}

}  // namespace loom::optim::detail
