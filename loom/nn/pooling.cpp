#include "loom/nn/pooling.h"

#include "loom/nn/repr.h"
#include "loom/ops/conv.h"

namespace loom::nn {

namespace {

// Pools (C, H, W) inputs through the batched op, as PyTorch accepts both.
template <class F>
Tensor pool_any(const Module& m, const Tensor& x, F&& f) {
  LOOM_CHECK(x.dim() == 3 || x.dim() == 4, m.repr(), ": expected input (N, C, H, W) or (C, H, W), got shape ",
             x.shape());
  if (x.dim() == 3) return f(x.unsqueeze(0)).squeeze(0);
  return f(x);
}

bool positive(IntPair p) { return p.h > 0 && p.w > 0; }
bool non_negative(IntPair p) { return p.h >= 0 && p.w >= 0; }

}  // namespace

MaxPool2d::MaxPool2d(const MaxPool2dOptions& o) : options(o) {
  if (options.stride == IntPair(0)) options.stride = options.kernel_size;
  LOOM_CHECK(positive(o.kernel_size) && positive(options.stride) && non_negative(o.padding) && positive(o.dilation),
             "MaxPool2d: kernel_size, stride and dilation must be positive and padding non-negative");
}

Tensor MaxPool2d::forward(const Tensor& x) {
  const Pool2dArgs a{.kernel_size = options.kernel_size.arr(), .stride = options.stride.arr(),
                     .padding = options.padding.arr(), .dilation = options.dilation.arr(),
                     .ceil_mode = options.ceil_mode};
  return pool_any(*this, x, [&](const Tensor& t) { return max_pool2d(t, a); });
}

Tensor MaxPool2d::forward_relu(const Tensor& x) {
  const Pool2dArgs a{.kernel_size = options.kernel_size.arr(), .stride = options.stride.arr(),
                     .padding = options.padding.arr(), .dilation = options.dilation.arr(),
                     .ceil_mode = options.ceil_mode};
  return pool_any(*this, x, [&](const Tensor& t) { return relu_max_pool2d(t, a); });
}

std::string MaxPool2d::extra_repr() const {
  const auto& o = options;
  return "kernel_size=" + o.kernel_size.compact() + ", stride=" + o.stride.compact() +
         ", padding=" + o.padding.compact() + ", dilation=" + o.dilation.compact() +
         ", ceil_mode=" + py_bool(o.ceil_mode);
}

AvgPool2d::AvgPool2d(const AvgPool2dOptions& o) : options(o) {
  if (options.stride == IntPair(0)) options.stride = options.kernel_size;
  LOOM_CHECK(positive(o.kernel_size) && positive(options.stride) && non_negative(o.padding),
             "AvgPool2d: kernel_size and stride must be positive and padding non-negative");
}

Tensor AvgPool2d::forward(const Tensor& x) {
  const Pool2dArgs a{.kernel_size = options.kernel_size.arr(), .stride = options.stride.arr(),
                     .padding = options.padding.arr(), .ceil_mode = options.ceil_mode,
                     .count_include_pad = options.count_include_pad};
  return pool_any(*this, x, [&](const Tensor& t) { return avg_pool2d(t, a); });
}

std::string AvgPool2d::extra_repr() const {
  const auto& o = options;
  return "kernel_size=" + o.kernel_size.compact() + ", stride=" + o.stride.compact() +
         ", padding=" + o.padding.compact();
}

AdaptiveAvgPool2d::AdaptiveAvgPool2d(const AdaptiveAvgPool2dOptions& o) : options(o) {
  LOOM_CHECK(positive(o.output_size), "AdaptiveAvgPool2d: output_size must be positive, got ", o.output_size.tuple());
}

Tensor AdaptiveAvgPool2d::forward(const Tensor& x) {
  return pool_any(*this, x, [&](const Tensor& t) { return adaptive_avg_pool2d(t, options.output_size.arr()); });
}

std::string AdaptiveAvgPool2d::extra_repr() const { return "output_size=" + options.output_size.compact(); }

}  // namespace loom::nn
