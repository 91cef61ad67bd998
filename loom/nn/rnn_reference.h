// The plain reference for rnn_layer: the same recurrence written step by step with matmul, sigmoid, tanh,
// chunk and where, so autograd derives its backward. Tests compare the fused layer against it.
//   nn::RNNLayerOut fast = nn::rnn_layer(args);
//   nn::RNNLayerOut ref = nn::rnn_layer_reference(args);   // same values and gradients, much slower
#pragma once
#include "loom/nn/rnn_layer.h"

namespace loom::nn {

RNNLayerOut rnn_layer_reference(const RNNLayerArgs& a);

}  // namespace loom::nn
