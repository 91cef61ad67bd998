// Structured pruning that makes the model smaller, not only zeroed: every Conv2d / Linear of a Sequential but the
// last keeps its strongest output channels (by L`n` norm, the channels ln_structured would keep) and the next
// weighted layer loses the matching inputs, through the activations, pooling, BatchNorm and Flatten between.
//   compress::Shrunk s = compress::shrink_channels(*cnn, {.amount = 0.5});   // 32, 64, 64 -> 16, 32, 32
//   s.model;  s.widths;  // a new, narrower Sequential and its hidden widths (models::ModelSpec::widths)
#pragma once
#include <memory>
#include <vector>

#include "loom/compress/prune.h"
#include "loom/nn/container.h"

namespace loom::compress {

struct ShrinkOptions {
  prune::Amount amount = 0.5;  // of each layer's output channels, rounded as torch rounds
  double n = 2;                // the norm that ranks channels (ln_structured's n)
};

struct Shrunk {
  std::shared_ptr<nn::Sequential> model;  // new layers for the narrowed ones; stateless layers are shared
  std::vector<int64_t> widths;            // the output widths of the narrowed layers, first first
  std::vector<std::vector<int64_t>> kept;  // per narrowed layer: the original indices of its kept channels
};

// Throws naming the layer when the model cannot be narrowed: fewer than two Conv2d/Linear layers, a grouped
// convolution, a layer with parameters other than BatchNorm between two weighted layers, sizes that do not
// line up, an amount that would leave no channel, or a model that still holds pruning masks (prune::remove).
Shrunk shrink_channels(nn::Sequential& model, const ShrinkOptions& options = {});

}  // namespace loom::compress
