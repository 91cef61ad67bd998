// Helpers the optimizers' step() share (internal to loom/optim). An update is one fused pass over a parameter
// behind Backend::optimizer_update (loom/backend/cpu/optim_update.cpp), so a step makes no temporary tensors:
//   Tensor g = detail::step_grad(p, "SGD");  if (!g.defined()) continue;
//   detail::update(p, g, OptimizerUpdate{.kind = OptimizerKind::SGD, .lr = 0.1}, momentum_buffer);
#pragma once
#include "loom/backend/backend.h"
#include "loom/core/tensor.h"

namespace loom::optim::detail {

// p's gradient as a contiguous tensor of p's dtype and shape, or undefined when p has none.
Tensor step_grad(const Tensor& p, const char* opt);

// A zero-filled contiguous buffer shaped like p (optimizer state).
Tensor zero_buffer(const Tensor& p);

// Runs the update on p (a contiguous copy that is written back when p itself is strided), then bumps p's
// version so autograd notices the in-place change. Unused state buffers stay undefined.
inline void update(Tensor& p, const Tensor& g, const OptimizerUpdate& u, Tensor s0 = {}, Tensor s1 = {},
                   Tensor s2 = {}) {
  Tensor w = p.is_contiguous() ? p : p.contiguous();
  backend_for(w).optimizer_update(u, w, g, s0, s1, s2);
  if (w.is_same(p)) p.bump_version();
  else p.copy_(w);
}

}  // namespace loom::optim::detail
