// Dynamically quantized int8 layers, as torch.ao.nn.quantized.dynamic.Linear / Conv2d with per-channel weights:
// the weight is int8, symmetric, one f32 scale per output channel (quantized once); every call quantizes its
// input to u8 with one scale and zero point from the batch's min/max (fbgemm's reduce_range: levels 0..127),
// multiplies in int32 and adds the f32 bias after. Inference only. The product is Backend::int8_linear (on the
// CPU an AVX-512 VNNI kernel); a convolution unfolds its input (Backend::unfold2d) and multiplies each sample.
//   auto q = quant::Int8Linear::from_linear(*fc);
//   Tensor y = (*q)(x);                                   // ~= fc(x)
// State: `weight_int8` (the int8 values as a u8 buffer of the weight's shape: core has no int8 dtype yet; the
// bytes are two's complement), `weight_scale` f32 (out), and the float `bias` parameter. The row sums that
// correct for the input's zero point are derived from weight_int8 (again whenever it changes), not stored.
#pragma once
#include <memory>
#include <mutex>

#include "loom/nn/conv_layers.h"
#include "loom/nn/linear.h"

namespace loom::quant {

// The per-channel int8 weight of a layer and its cached row sums.
struct Int8Weight {
  Tensor q;      // u8 holding int8, (out, ...)
  Tensor scale;  // f32 (out)
  // sum over each output row of q (i32 (out)); recomputed when q's storage or version changes.
  const Tensor& row_sums();

 private:
  std::mutex mu_;
  Tensor sums_;
  const void* sums_of_ = nullptr;
  uint64_t sums_version_ = 0;
};

class Int8Linear : public nn::Linear {
 public:
  // An empty layer (zeros) for load_state_dict to fill.
  explicit Int8Linear(const nn::LinearOptions& o);
  // Quantizes fc's weight per output row and copies its bias.
  static std::shared_ptr<Int8Linear> from_linear(const nn::Linear& fc);
  Tensor forward(const Tensor& x) override;
  std::string name() const override { return "DynamicQuantizedLinear"; }
  std::string extra_repr() const override;

  Int8Weight w8;
};

class Int8Conv2d : public nn::Conv2d {
 public:
  // An empty layer for load_state_dict to fill. Grouped convolutions are refused (quantize_dynamic leaves them
  // in float).
  explicit Int8Conv2d(const nn::Conv2dOptions& o);
  static std::shared_ptr<Int8Conv2d> from_conv(const nn::Conv2d& conv);
  Tensor forward(const Tensor& x) override;
  std::string name() const override { return "DynamicQuantizedConv2d"; }
  std::string extra_repr() const override;

  Int8Weight w8;
};

}  // namespace loom::quant
