#include "loom/nn/conv_layers.h"

#include <cmath>
#include <sstream>

#include "loom/nn/init.h"
#include "loom/nn/repr.h"
#include "loom/ops/conv.h"
#include "loom/ops/creation.h"

namespace loom::nn {

namespace {

void check_conv_options(const char* kind, int64_t in, int64_t out, int64_t groups, bool kernel_ok, bool geometry_ok) {
  LOOM_CHECK(in > 0 && out > 0, kind, ": .in and .out (channels) must be positive, got in=", in, ", out=", out);
  LOOM_CHECK(kernel_ok, kind, ": .kernel_size must be positive");
  LOOM_CHECK(geometry_ok, kind, ": stride and dilation must be positive and padding non-negative");
  LOOM_CHECK(groups > 0 && in % groups == 0 && out % groups == 0, kind, ": in (", in, ") and out (", out,
             ") channels must be divisible by groups (", groups, ")");
}

// PyTorch's default: kaiming_uniform_(a = sqrt(5)) for the weight, U(-1/sqrt(fan_in), 1/sqrt(fan_in)) bias.
void default_init(const Tensor& weight, const Tensor& bias) {
  init::kaiming_uniform_(weight, std::sqrt(5.0));
  if (!bias.defined()) return;
  const int64_t fan_in = init::calculate_fan_in_and_fan_out(weight).first;
  const double bound = fan_in > 0 ? 1.0 / std::sqrt(double(fan_in)) : 0.0;
  init::uniform_(bias, -bound, bound);
}

// The optional parts of a convolution's repr, printed only when they differ from the defaults.
std::string conv_tail(bool pad, const std::string& padding, bool dil, const std::string& dilation, int64_t groups,
                      bool bias) {
  std::ostringstream os;
  if (pad) os << ", padding=" << padding;
  if (dil) os << ", dilation=" << dilation;
  if (groups != 1) os << ", groups=" << groups;
  if (!bias) os << ", bias=False";
  return os.str();
}

}  // namespace

// ---- Conv2d

Conv2d::Conv2d(const Conv2dOptions& o) : options(o) {
  const bool geometry_ok = o.stride.h > 0 && o.stride.w > 0 && o.dilation.h > 0 && o.dilation.w > 0 &&
                           o.padding.h >= 0 && o.padding.w >= 0;
  check_conv_options("Conv2d", o.in, o.out, o.groups, o.kernel_size.h > 0 && o.kernel_size.w > 0, geometry_ok);
  weight = register_parameter("weight", empty({o.out, o.in / o.groups, o.kernel_size.h, o.kernel_size.w}));
  bias = register_parameter("bias", o.bias ? empty({o.out}) : Tensor());
  reset_parameters();
}

void Conv2d::reset_parameters() { default_init(weight, bias); }

Tensor Conv2d::forward(const Tensor& x) {
  LOOM_CHECK((x.dim() == 4 || x.dim() == 3) && x.size(-3) == options.in, repr(), ": expected input (N, ", options.in,
             ", H, W) or (", options.in, ", H, W), got shape ", x.shape());
  const Conv2dArgs args{.stride = options.stride.arr(), .padding = options.padding.arr(),
                        .dilation = options.dilation.arr(), .groups = options.groups};
  if (x.dim() == 3) return conv2d(x.unsqueeze(0), weight, bias, args).squeeze(0);
  return conv2d(x, weight, bias, args);
}

std::string Conv2d::extra_repr() const {
  const auto& o = options;
  std::ostringstream os;
  os << o.in << ", " << o.out << ", kernel_size=" << o.kernel_size.tuple() << ", stride=" << o.stride.tuple()
     << conv_tail(o.padding != IntPair(0), o.padding.tuple(), o.dilation != IntPair(1), o.dilation.tuple(), o.groups,
                  o.bias);
  return os.str();
}

// ---- Conv1d

Conv1d::Conv1d(const Conv1dOptions& o) : options(o) {
  check_conv_options("Conv1d", o.in, o.out, o.groups, o.kernel_size > 0,
                     o.stride > 0 && o.dilation > 0 && o.padding >= 0);
  weight = register_parameter("weight", empty({o.out, o.in / o.groups, o.kernel_size}));
  bias = register_parameter("bias", o.bias ? empty({o.out}) : Tensor());
  reset_parameters();
}

void Conv1d::reset_parameters() { default_init(weight, bias); }

Tensor Conv1d::forward(const Tensor& x) {
  LOOM_CHECK((x.dim() == 3 || x.dim() == 2) && x.size(-2) == options.in, repr(), ": expected input (N, ", options.in,
             ", L) or (", options.in, ", L), got shape ", x.shape());
  const Conv1dArgs args{.stride = options.stride, .padding = options.padding, .dilation = options.dilation,
                        .groups = options.groups};
  if (x.dim() == 2) return conv1d(x.unsqueeze(0), weight, bias, args).squeeze(0);
  return conv1d(x, weight, bias, args);
}

std::string Conv1d::extra_repr() const {
  const auto& o = options;
  std::ostringstream os;
  os << o.in << ", " << o.out << ", kernel_size=" << py_tuple({o.kernel_size}) << ", stride=" << py_tuple({o.stride})
     << conv_tail(o.padding != 0, py_tuple({o.padding}), o.dilation != 1, py_tuple({o.dilation}), o.groups, o.bias);
  return os.str();
}

}  // namespace loom::nn
