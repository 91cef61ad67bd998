#include "loom/quant/int8_layers.h"

#include <algorithm>
#include <sstream>

#include "loom/autograd/grad_mode.h"
#include "loom/backend/backend.h"
#include "loom/ops/creation.h"

namespace loom::quant {

namespace {

void check_inference(const Tensor& x, const char* layer) {
  LOOM_CHECK(!(grad_enabled() && x.requires_grad()), layer, ": inference only; the input requires grad (run under "
             "NoGradGuard, or train the float model and quantize it again)");
}

// Quantizes an f32 weight (out, ...) into w8 (buffers already registered with the weight's shape).
void fill_int8(Int8Weight& w8, const Tensor& weight) {
  Tensor w = weight.detach().to(DType::f32).contiguous().to(w8.q.device());
  Tensor w2 = w.reshape({w.size(0), -1});
  Tensor q2 = w8.q.reshape({w.size(0), -1});
  backend_for(w).int8_quantize_weight(q2, w8.scale, w2);
}

void copy_bias(Tensor& dst, const Tensor& src) {
  if (!src.defined()) return;
  NoGradGuard g;
  dst.copy_(src.detach());
}

}  // namespace

const Tensor& Int8Weight::row_sums() {
  std::lock_guard<std::mutex> lock(mu_);
  if (!sums_.defined() || sums_of_ != q.raw_data() || sums_version_ != q.version() || sums_.device() != q.device()) {
    sums_ = empty({q.size(0)}, {.dtype = DType::i32, .device = q.device()});
    backend_for(q).int8_row_sums(sums_, q.reshape({q.size(0), -1}));
    sums_of_ = q.raw_data();
    sums_version_ = q.version();
  }
  return sums_;
}

// ---- Linear

// nn::Linear's constructor would allocate an (out, in) f32 weight: built as a 1x1 Linear, then re-registered.
Int8Linear::Int8Linear(const nn::LinearOptions& o) : nn::Linear(nn::LinearOptions{.in = 1, .out = 1, .bias = o.bias}) {
  LOOM_CHECK(o.in > 0 && o.out > 0, "Int8Linear: in and out features must be positive, got in=", o.in, ", out=", o.out);
  options = o;
  weight = register_parameter("weight", Tensor());
  bias = register_parameter("bias", o.bias ? zeros({o.out}) : Tensor(), false);
  w8.q = register_buffer("weight_int8", zeros({o.out, o.in}, {.dtype = DType::u8}));
  w8.scale = register_buffer("weight_scale", ones({o.out}));
}

std::shared_ptr<Int8Linear> Int8Linear::from_linear(const nn::Linear& fc) {
  LOOM_CHECK(fc.weight.defined() && fc.weight.dim() == 2, "Int8Linear: ", fc.repr(), " has no (out, in) float weight");
  auto q = std::make_shared<Int8Linear>(fc.options);
  fill_int8(q->w8, fc.weight);
  copy_bias(q->bias, fc.bias);
  return q;
}

Tensor Int8Linear::forward(const Tensor& x) {
  LOOM_CHECK(x.dim() >= 1 && x.size(-1) == options.in, "DynamicQuantizedLinear: expected input with last dimension ",
             options.in, " (in_features), got shape ", x.shape());
  check_inference(x, "DynamicQuantizedLinear");
  Tensor x2 = x.to(DType::f32).contiguous().reshape({-1, options.in});
  Backend& be = backend_for(x2);
  const Int8Params p = be.int8_choose_params(x2);
  Tensor y = empty({x2.size(0), options.out}, {.device = x2.device()});
  be.int8_linear(y, x2, p, w8.q, w8.scale, w8.row_sums(), bias);
  Shape out_shape = x.shape();
  out_shape.back() = options.out;
  return y.reshape(out_shape);
}

std::string Int8Linear::extra_repr() const {
  return nn::Linear::extra_repr() + ", dtype=torch.qint8, qscheme=torch.per_channel_affine";
}

// ---- Conv2d

Int8Conv2d::Int8Conv2d(const nn::Conv2dOptions& o)
    : nn::Conv2d(nn::Conv2dOptions{.in = 1, .out = 1, .kernel_size = 1, .bias = o.bias}) {
  LOOM_CHECK(o.in > 0 && o.out > 0, "Int8Conv2d: in and out channels must be positive, got in=", o.in, ", out=", o.out);
  LOOM_CHECK(o.groups == 1, "Int8Conv2d: grouped convolutions (groups=", o.groups, ") are not quantized; keep the layer "
             "in float");
  LOOM_CHECK(o.kernel_size.h > 0 && o.kernel_size.w > 0 && o.stride.h > 0 && o.stride.w > 0 && o.dilation.h > 0 &&
                 o.dilation.w > 0 && o.padding.h >= 0 && o.padding.w >= 0,
             "Int8Conv2d: kernel size, stride and dilation must be positive and padding non-negative");
  options = o;
  weight = register_parameter("weight", Tensor());
  bias = register_parameter("bias", o.bias ? zeros({o.out}) : Tensor(), false);
  w8.q = register_buffer("weight_int8", zeros({o.out, o.in, o.kernel_size.h, o.kernel_size.w}, {.dtype = DType::u8}));
  w8.scale = register_buffer("weight_scale", ones({o.out}));
}

std::shared_ptr<Int8Conv2d> Int8Conv2d::from_conv(const nn::Conv2d& conv) {
  LOOM_CHECK(conv.weight.defined() && conv.weight.dim() == 4, "Int8Conv2d: ", conv.repr(), " has no float weight");
  auto q = std::make_shared<Int8Conv2d>(conv.options);
  fill_int8(q->w8, conv.weight);
  copy_bias(q->bias, conv.bias);
  return q;
}

Tensor Int8Conv2d::forward(const Tensor& x_in) {
  LOOM_CHECK((x_in.dim() == 4 || x_in.dim() == 3) && x_in.size(-3) == options.in, "DynamicQuantizedConv2d: expected "
             "input (N, ", options.in, ", H, W) or (", options.in, ", H, W), got shape ", x_in.shape());
  check_inference(x_in, "DynamicQuantizedConv2d");
  if (x_in.dim() == 3) return forward(x_in.unsqueeze(0)).squeeze(0);
  const Tensor x = x_in.to(DType::f32).contiguous();
  const auto& o = options;
  const int64_t N = x.size(0), C = x.size(1), H = x.size(2), W = x.size(3);
  const int64_t OH = (H + 2 * o.padding.h - o.dilation.h * (o.kernel_size.h - 1) - 1) / o.stride.h + 1;
  const int64_t OW = (W + 2 * o.padding.w - o.dilation.w * (o.kernel_size.w - 1) - 1) / o.stride.w + 1;
  LOOM_CHECK(OH > 0 && OW > 0, "DynamicQuantizedConv2d: the kernel ", o.kernel_size.tuple(), " is larger than the "
             "padded input ", x.shape());
  Backend& be = backend_for(x);
  // One scale and zero point for the whole batch, as torch; the unfolded padding holds 0.0, which quantizes to
  // the zero point exactly, so padding with zeros and quantizing commute.
  const Int8Params p = be.int8_choose_params(x);
  const int64_t P = OH * OW, CKK = C * o.kernel_size.h * o.kernel_size.w;
  Tensor out = empty({N, o.out, OH, OW}, {.device = x.device()});
  if (N == 0) return out;
  const Tensor q2 = w8.q.reshape({o.out, CKK});
  const Tensor& sums = w8.row_sums();
  // Unfold a few samples at a time, about 512 kB of columns (KH*KW times the input): written and read back while
  // they are still in L2, instead of a round trip through memory.
  const int64_t chunk = std::clamp<int64_t>((int64_t(512) << 10) / std::max<int64_t>(1, CKK * P * 4), 1, N);
  for (int64_t n0 = 0; n0 < N; n0 += chunk) {
    const int64_t nb = std::min(chunk, N - n0);
    const Tensor xs = x.narrow(0, n0, nb);
    Tensor cols = empty({nb, CKK, P}, {.device = x.device()});
    const ConvGeom g{.N = nb, .C = C, .H = H, .W = W, .OC = 0, .KH = o.kernel_size.h, .KW = o.kernel_size.w,
                     .OH = OH, .OW = OW, .sh = o.stride.h, .sw = o.stride.w, .ph = o.padding.h, .pw = o.padding.w,
                     .dh = o.dilation.h, .dw = o.dilation.w};
    be.unfold2d(cols, xs, g);
    // Each sample: (P, CKK) activations (its columns transposed) times the (OC, CKK) weight into (P, OC), which is
    // the sample's (OC, OH, OW) output transposed: both are views, the kernel follows their strides.
    const Tensor xt = cols.transpose(1, 2);
    Tensor yt = out.narrow(0, n0, nb).reshape({nb, o.out, P}).transpose(1, 2);
    be.int8_linear(yt, xt, p, q2, w8.scale, sums, bias);
  }
  return out;
}

std::string Int8Conv2d::extra_repr() const {
  return nn::Conv2d::extra_repr() + ", dtype=torch.qint8, qscheme=torch.per_channel_affine";
}

}  // namespace loom::quant
