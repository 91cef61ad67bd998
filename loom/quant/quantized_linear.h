// A Linear layer whose weight is held as ggml Q8_0 / Q4_0 blocks: inference only (no gradients), with the
// activations quantized per 32-value block on each call and the product run by the Backend's quantized_linear entry (on the CPU: backend/cpu/qgemm.h).
//   auto q = quant::QuantizedLinear::from_linear(*fc, quant::QuantFormat::q8_0);
//   Tensor y = (*q)(x);                                 // x (..., in) f32 -> (..., out) f32, ~= fc(x)
//
// It is an nn::Linear (so a model's `std::shared_ptr<nn::Linear>` members take it unchanged) whose f32
// `weight` parameter is absent; the blocks are a u8 buffer `weight_q` of shape (out, in / 32 * block bytes), so
// state_dict()/load_state_dict() and safetensors files carry them as plain bytes. When core's DType gains block
// types this buffer becomes a tensor of that dtype with the same bytes.
#pragma once
#include <memory>

#include "loom/nn/linear.h"
#include "loom/core/quant_blocks.h"

namespace loom::quant {

class QuantizedLinear : public nn::Linear {
 public:
  // An empty layer (weight_q zero, bias zero) for load_state_dict to fill.
  QuantizedLinear(const nn::LinearOptions& o, QuantFormat format);
  // Quantizes `fc`'s f32 weight row by row (reference rounding) and copies its bias.
  static std::shared_ptr<QuantizedLinear> from_linear(const nn::Linear& fc, QuantFormat format);
  // The same from a weight (out, in) and an optional bias (out) (a tied LM head: the embedding's table).
  static std::shared_ptr<QuantizedLinear> from_weight(const Tensor& weight, const Tensor& bias, QuantFormat format);
  Tensor forward(const Tensor& x) override;
  std::string extra_repr() const override;
  std::string name() const override { return "QuantizedLinear"; }
  // The weight dequantized to f32 (out, in): what the blocks stand for.
  Tensor dequantized_weight() const;

  QuantFormat format;
  Tensor weight_q;  // u8 (out, row_bytes(format, in))
};

}  // namespace loom::quant
