#include "loom/quant/quantized_linear.h"

#include "loom/autograd/grad_mode.h"
#include "loom/ops/creation.h"
#include "loom/backend/backend.h"

namespace loom::quant {

// nn::Linear's constructor allocates and initialises an (out, in) f32 weight; built as a 1x1 Linear instead,
// then re-registered, a quantized layer never holds the f32 matrix it replaces.
QuantizedLinear::QuantizedLinear(const nn::LinearOptions& o, QuantFormat f)
    : nn::Linear(nn::LinearOptions{.in = 1, .out = 1, .bias = o.bias}), format(f) {
  LOOM_CHECK(o.in > 0 && o.out > 0 && o.in % QK == 0, "QuantizedLinear: in_features must be a positive multiple of ",
             QK, " and out_features positive, got in=", o.in, ", out=", o.out);
  options = o;
  weight = register_parameter("weight", Tensor());
  bias = register_parameter("bias", o.bias ? zeros({o.out}) : Tensor(), false);
  weight_q = register_buffer("weight_q", zeros({o.out, int64_t(row_bytes(f, o.in))}, {.dtype = DType::u8}));
}

std::shared_ptr<QuantizedLinear> QuantizedLinear::from_linear(const nn::Linear& fc, QuantFormat f) {
  return from_weight(fc.weight, fc.bias, f);
}

std::shared_ptr<QuantizedLinear> QuantizedLinear::from_weight(const Tensor& weight, const Tensor& b, QuantFormat f) {
  LOOM_CHECK(weight.defined() && weight.dim() == 2, "QuantizedLinear: expected a 2-d (out, in) weight");
  const int64_t out = weight.size(0), in = weight.size(1);
  auto q = std::make_shared<QuantizedLinear>(nn::LinearOptions{.in = in, .out = out, .bias = b.defined()}, f);
  // Quantized where the new layer's blocks live (the host); Module::to moves the layer afterwards.
  Tensor w = weight.detach().to(DType::f32).contiguous().to(q->weight_q.device());
  backend_for(w).quantize_rows(q->weight_q, w, f);
  if (b.defined()) {
    NoGradGuard g;
    q->bias.copy_(b.detach());
  }
  return q;
}

Tensor QuantizedLinear::forward(const Tensor& x) {
  LOOM_CHECK(x.dim() >= 1 && x.size(-1) == options.in, "QuantizedLinear: expected input with last dimension ",
             options.in, " (in_features), got shape ", x.shape());
  LOOM_CHECK(!(grad_enabled() && x.requires_grad()), "QuantizedLinear: inference only; the input requires grad "
             "(run under NoGradGuard or dequantize the model to train it)");
  const int64_t K = options.in, N = options.out;
  Tensor xc = x.to(DType::f32).contiguous().reshape({-1, K});
  Shape out_shape = x.shape();
  out_shape.back() = N;
  Tensor y = empty(out_shape, {.device = xc.device()});
  backend_for(xc).quantized_linear(y, xc, weight_q, bias, format);
  return y;
}

Tensor QuantizedLinear::dequantized_weight() const {
  Tensor w = empty({options.out, options.in}, {.device = weight_q.device()});
  backend_for(weight_q).dequantize_rows(w, weight_q, format);
  return w;
}

std::string QuantizedLinear::extra_repr() const { return nn::Linear::extra_repr() + ", format=" + format_name(format); }

}  // namespace loom::quant
