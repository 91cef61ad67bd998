// The checkpoint node keeps only its inputs; backward rebuilds the block's graph and runs a nested
// backward through it (the engine keeps its state on the stack, so it is re-entrant).
#include "loom/autograd/checkpoint.h"

#include <string>

#include "loom/autograd/function.h"
#include "loom/core/generator.h"

namespace loom {

std::vector<Tensor> checkpoint(const CheckpointFn& fn, const std::vector<Tensor>& inputs) {
  if (!autograd::needs_grad(inputs)) return fn(inputs);
  const std::string rng_state = default_generator().get_state();
  std::vector<Tensor> outputs;
  {
    NoGradGuard no_grad;
    outputs = fn(inputs);
  }
  std::vector<autograd::SavedTensor> saved;
  std::vector<bool> wants_grad;
  for (const auto& x : inputs) {
    saved.push_back(autograd::save(x, "checkpoint"));
    wants_grad.push_back(x.defined() && x.requires_grad());
  }
  // Outputs that alias an input (fn returned it unchanged) would re-point the input's history: copy them.
  for (auto& y : outputs)
    for (const auto& x : inputs)
      if (y.defined() && x.defined() && y.raw_data() == x.raw_data()) y = y.clone();
  autograd::record("Checkpoint", outputs, inputs,
                   [fn, saved, wants_grad, rng_state](const std::vector<Tensor>& grads) {
                     std::vector<Tensor> xs;
                     for (size_t i = 0; i < saved.size(); ++i) {
                       Tensor x = saved[i].get();
                       if (x.defined()) {
                         x = x.detach();
                         if (wants_grad[i]) x.requires_grad_(true);
                       }
                       xs.push_back(x);
                     }
                     std::vector<Tensor> ys;
                     {
                       // Replay with the first run's random stream, then put the current stream back.
                       const std::string now = default_generator().get_state();
                       default_generator().set_state(rng_state);
                       EnableGradGuard grad_on;
                       ys = fn(xs);
                       default_generator().set_state(now);
                     }
                     LOOM_CHECK(ys.size() == grads.size(), "checkpoint: the function returned ", ys.size(),
                                " outputs on recompute but ", grads.size(), " in forward; it must be deterministic");
                     std::vector<Tensor> roots, seeds;
                     for (size_t i = 0; i < ys.size(); ++i)
                       if (ys[i].defined() && ys[i].requires_grad()) {
                         roots.push_back(ys[i]);
                         seeds.push_back(grads[i]);
                       }
                     if (!roots.empty()) autograd::run_backward(roots, seeds, false);
                     std::vector<Tensor> gx;
                     for (size_t i = 0; i < xs.size(); ++i) gx.push_back(wants_grad[i] ? xs[i].grad() : Tensor());
                     return gx;
                   });
  return outputs;
}

Tensor checkpoint(const std::function<Tensor(const Tensor&)>& fn, const Tensor& input) {
  return checkpoint([fn](const std::vector<Tensor>& xs) { return std::vector<Tensor>{fn(xs[0])}; },
                    std::vector<Tensor>{input})[0];
}

}  // namespace loom
