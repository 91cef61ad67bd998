// A transformer's MLP, Linear -> GELU -> Linear, as one op whose GELU rides in the products' stores:
//   Tensor y = loom::gelu_mlp(x, fc.weight, fc.bias, proj.weight, proj.bias, "none");  // "tanh": GPT-2's gelu_new
// Same result as linear(gelu(linear(x, w1, b1), approximate), w2, b2) (the composite it falls back to for f64,
// bf16 autocast, few rows or a backend without the fused product), with two passes over the hidden activations
// fewer: forward writes gelu(x W1^T + b1) from the first product's tiles, and backward multiplies by gelu' in
// the store of dY W2 (measured: GELU's own passes were ~7% of a W3 training step).
#pragma once
#include <string>

#include "loom/core/tensor.h"

namespace loom {

// x (..., in); w1 (inner, in), b1 (inner) or undefined; w2 (out, inner), b2 (out) or undefined. approximate: "none"
// (exact, erf) or "tanh". Returns (..., out).
Tensor gelu_mlp(const Tensor& x, const Tensor& w1, const Tensor& b1, const Tensor& w2, const Tensor& b2,
                const std::string& approximate = "none");

}  // namespace loom
