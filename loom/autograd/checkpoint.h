// Activation checkpointing, like torch.utils.checkpoint.checkpoint: trade compute for memory by running a
// piece of the network without keeping its activations, and running it again, with grad, in backward.
//   Tensor y = loom::checkpoint([&](const Tensor& x) { return (*block)(x); }, x);  // block's activations freed
//   y.sum().backward();   // re-runs the block on x, then backpropagates through it
#pragma once
#include <functional>
#include <vector>

#include "loom/core/tensor.h"

namespace loom {

using CheckpointFn = std::function<std::vector<Tensor>(const std::vector<Tensor>&)>;

// Runs fn(inputs) with grad mode off and records one node whose backward re-runs fn (with grad on, on
// detached copies of the inputs, with the default generator's state of the first run, so dropout draws the
// same masks) and backpropagates the output gradients through that fresh graph: parameters used inside fn
// get their .grad there, the inputs' gradients flow on. As in PyTorch's reentrant form, nothing is
// recorded when no input requires grad (so parameters inside fn then get no gradient). fn must be
// deterministic apart from the default generator; its floating outputs carry the gradient.
std::vector<Tensor> checkpoint(const CheckpointFn& fn, const std::vector<Tensor>& inputs);
Tensor checkpoint(const std::function<Tensor(const Tensor&)>& fn, const Tensor& input);

}  // namespace loom
