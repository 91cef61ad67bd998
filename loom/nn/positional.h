// Position information for attention models: a learned table, the fixed sinusoidal table of Vaswani et
// al. (2017) and rotary embeddings (RoPE, Su et al. 2021) applied to queries and keys.
//   nn::SinusoidalPositionalEncoding pe({.max_len = 512, .dim = 64});  Tensor h = pe(x);   // x (N, T, 64)
//   auto [q2, k2] = loom::apply_rotary(q, k, loom::arange(pos, pos + T));                 // q, k (N, H, T, D)
#pragma once
#include <utility>

#include "loom/nn/module.h"

namespace loom {

// (max_len, dim): [p, 2i] = sin(p / base^(2i / dim)), [p, 2i + 1] = cos(p / base^(2i / dim)); dim even.
Tensor sinusoidal_positions(int64_t max_len, int64_t dim, double base = 10000.0, DType dtype = DType::f32);

// Rotary tables for integer positions (any shape P): cos and sin of shape P + [head_dim], in the
// "rotate half" layout (GPT-NeoX / Hugging Face LLaMA): frequency i = base^(-2i / head_dim) sits at
// columns i and i + head_dim / 2.
std::pair<Tensor, Tensor> rotary_cos_sin(const Tensor& positions, int64_t head_dim, double base = 10000.0,
                                         DType dtype = DType::f32);

// x * cos + rotate_half(x) * sin, with rotate_half([a, b]) = [-b, a] over the last dim. x (..., T, D) and
// cos/sin (T, D) (or anything broadcasting to x). Differentiable in x.
Tensor rotary_embed(const Tensor& x, const Tensor& cos, const Tensor& sin);

// Rotates q (..., T, D) and k (..., T, D) by their positions: (T) int64, or (N, T) for q, k (N, H, T, D).
std::pair<Tensor, Tensor> apply_rotary(const Tensor& q, const Tensor& k, const Tensor& positions, double base = 10000.0);

}  // namespace loom

namespace loom::nn {

struct PositionalOptions {
  int64_t max_len = 0;
  int64_t dim = 0;
};

// A trained table "weight" (max_len, dim), N(0, 1) at start as nn.Embedding; forward adds rows
// [offset, offset + T) to x (N, T, dim) (batch first).
class LearnedPositionalEmbedding : public Module {
 public:
  explicit LearnedPositionalEmbedding(const PositionalOptions& o);
  Tensor forward(const Tensor& x) override { return forward(x, 0); }
  Tensor forward(const Tensor& x, int64_t offset);
  std::string extra_repr() const override;

  PositionalOptions options;
  Tensor weight;
};

// The sinusoidal table as a non-persistent buffer "pe" (it is recomputed, so it stays out of state_dict);
// forward adds rows [offset, offset + T) to x (N, T, dim).
class SinusoidalPositionalEncoding : public Module {
 public:
  explicit SinusoidalPositionalEncoding(const PositionalOptions& o);
  Tensor forward(const Tensor& x) override { return forward(x, 0); }
  Tensor forward(const Tensor& x, int64_t offset);
  std::string extra_repr() const override;

  PositionalOptions options;
  Tensor pe;
};

}  // namespace loom::nn
