// Convolution and pooling ops: argument checks with PyTorch's size rules, the backend kernel, and each
// op's backward right after its forward. conv1d is conv2d on a height-1 image. Kernels take contiguous
// NCHW memory, so strided inputs are made contiguous here (a no-op for the usual case).
#include "loom/ops/conv.h"

#include <sstream>
#include <string>

#include "loom/autograd/function.h"
#include "loom/backend/backend.h"
#include "loom/ops/elementwise.h"
#include "loom/ops/shape.h"

namespace loom {

using autograd::needs_grad;
using autograd::record;
using autograd::save;
using G = std::vector<Tensor>;

namespace {

// A detached contiguous copy (or alias): kernels need dense memory, and the op records its own history.
Tensor dense(const Tensor& t) { return t.defined() ? t.detach().contiguous() : t; }

// "3x3" for 2-d geometry, "3" for 1-d (the last `nd` entries).
std::string dims_str(const int64_t* v, int nd) {
  std::ostringstream os;
  for (int i = 0; i < nd; ++i) os << (i ? "x" : "") << v[i];
  return os.str();
}

void check_float(const char* op, const Tensor& t, const char* what) {
  LOOM_CHECK(t.dtype() == DType::f32 || t.dtype() == DType::f64, op, ": expected a float32 or float64 ", what,
             ", got ", t.dtype());
}

// Validates conv1d (nd = 1) or conv2d (nd = 2) arguments; messages show the caller's own shapes.
void check_conv(const char* op, int nd, const Tensor& x, const Tensor& w, const Tensor& b, const int64_t* stride,
                const int64_t* pad, const int64_t* dil, int64_t groups) {
  const char* in_layout = nd == 2 ? "(N, C, H, W)" : "(N, C, L)";
  const char* w_layout =
      nd == 2 ? "(out_channels, in_channels / groups, kH, kW)" : "(out_channels, in_channels / groups, kL)";
  LOOM_CHECK(x.defined() && w.defined(), op, ": input and weight must be defined tensors");
  LOOM_CHECK(x.dim() == nd + 2, op, ": expected input ", in_layout, " with ", nd + 2, " dims, got shape ", x.shape());
  LOOM_CHECK(w.dim() == nd + 2, op, ": expected weight ", w_layout, " with ", nd + 2, " dims, got shape ", w.shape());
  check_float(op, x, "input");
  LOOM_CHECK(w.dtype() == x.dtype(), op, ": weight dtype ", w.dtype(), " does not match input dtype ", x.dtype());
  LOOM_CHECK(w.numel() > 0, op, ": weight must not be empty, got shape ", w.shape());
  LOOM_CHECK(groups >= 1, op, ": groups must be positive, got ", groups);
  for (int i = 0; i < nd; ++i) {
    LOOM_CHECK(stride[i] >= 1 && dil[i] >= 1 && pad[i] >= 0, op,
               ": expected stride >= 1, dilation >= 1 and padding >= 0, got stride ", dims_str(stride, nd),
               ", dilation ", dims_str(dil, nd), ", padding ", dims_str(pad, nd));
  }
  const int64_t OC = w.shape()[0], Cg = w.shape()[1];
  LOOM_CHECK(OC % groups == 0, op, ": weight ", w.shape(), " has ", OC,
             " output channels, not divisible by groups = ", groups);
  if (groups == 1) {
    LOOM_CHECK(x.shape()[1] == Cg, op, ": expected input ", in_layout, " with C = ", Cg, " to match weight ", w.shape(),
               ", got ", x.shape());
  } else {
    LOOM_CHECK(x.shape()[1] == Cg * groups, op, ": expected input ", in_layout, " with C = ", Cg * groups,
               " to match weight ", w.shape(), " and groups = ", groups, ", got ", x.shape());
  }
  if (b.defined()) {
    LOOM_CHECK(b.dim() == 1 && b.shape()[0] == OC, op, ": expected bias of shape [", OC, "] to match weight ",
               w.shape(), ", got ", b.shape());
    LOOM_CHECK(b.dtype() == x.dtype(), op, ": bias dtype ", b.dtype(), " does not match input dtype ", x.dtype());
  }
  int64_t padded[2], eff[2];
  for (int i = 0; i < nd; ++i) {
    padded[i] = x.shape()[size_t(2 + i)] + 2 * pad[i];
    eff[i] = dil[i] * (w.shape()[size_t(2 + i)] - 1) + 1;
  }
  for (int i = 0; i < nd; ++i)
    LOOM_CHECK(eff[i] <= padded[i], op, ": kernel size ", dims_str(eff, nd), " (weight ", w.shape(), ", dilation ",
               dims_str(dil, nd), ") is larger than the padded input ", dims_str(padded, nd), " (input ", x.shape(),
               ", padding ", dims_str(pad, nd), ")");
}

int64_t conv_out(int64_t in, int64_t k, int64_t s, int64_t p, int64_t d) {
  return (in + 2 * p - d * (k - 1) - 1) / s + 1;  // the caller checked that the kernel fits
}

ConvGeom conv_geom(const Tensor& x, const Tensor& w, const Conv2dArgs& a) {
  ConvGeom g{.N = x.shape()[0], .C = x.shape()[1], .H = x.shape()[2], .W = x.shape()[3],
             .OC = w.shape()[0], .KH = w.shape()[2], .KW = w.shape()[3], .OH = 0, .OW = 0,
             .sh = a.stride[0], .sw = a.stride[1], .ph = a.padding[0], .pw = a.padding[1],
             .dh = a.dilation[0], .dw = a.dilation[1], .groups = a.groups};
  g.OH = conv_out(g.H, g.KH, g.sh, g.ph, g.dh);
  g.OW = conv_out(g.W, g.KW, g.sw, g.pw, g.dw);
  return g;
}

// Forward and backward of a checked 4-d convolution.
Tensor conv2d_checked(const Tensor& x, const Tensor& w, const Tensor& b, const Conv2dArgs& a) {
  const ConvGeom g = conv_geom(x, w, a);
  Tensor xc = dense(x), wc = dense(w), bc = dense(b);
  Tensor y = make_tensor({g.N, g.OC, g.OH, g.OW}, x.dtype(), x.device());
  backend_for(x).conv2d(y, xc, wc, bc.defined() ? &bc : nullptr, g);
  if (needs_grad({x, w, b})) {
    const bool gx = x.requires_grad(), gw = w.requires_grad(), gb = b.defined() && b.requires_grad();
    record("Conv2d", {y}, {x, w, b},
           [sx = save(gw ? xc : Tensor(), "conv2d"), sw = save(gx ? wc : Tensor(), "conv2d"), g, gx, gw, gb,
            wshape = w.shape(), dt = x.dtype(), dev = x.device()](const G& grads) {
             Tensor go = grads[0].contiguous();
             Tensor dx = gx ? make_tensor({g.N, g.C, g.H, g.W}, dt, dev) : Tensor();
             Tensor dw = gw ? make_tensor(wshape, dt, dev) : Tensor();
             Tensor db = gb ? make_tensor({g.OC}, dt, dev) : Tensor();
             backend_for(go).conv2d_backward(gx ? &dx : nullptr, gw ? &dw : nullptr, gb ? &db : nullptr, go, sx.get(),
                                             sw.get(), g);
             return G{dx, dw, db};
           });
  }
  return y;
}

// PyTorch's pooling size rule: floor or ceil of the window count, but with ceil_mode the last window
// must start inside the input or its left padding.
int64_t pool_out(int64_t in, int64_t k, int64_t s, int64_t p, int64_t d, bool ceil_mode) {
  const int64_t num = in + 2 * p - d * (k - 1) - 1 + (ceil_mode ? s - 1 : 0);
  int64_t o = (num >= 0 ? num / s : -((-num + s - 1) / s)) + 1;
  if (ceil_mode && (o - 1) * s >= in + p) --o;
  return o;
}

PoolGeom pool_geom_of(const char* op, const Shape& shape, const Pool2dArgs& a, bool is_max);

PoolGeom pool_geom(const char* op, const Tensor& x, const Pool2dArgs& a, bool is_max) {
  LOOM_CHECK(x.defined(), op, ": the input tensor is undefined");
  LOOM_CHECK(x.dim() == 4, op, ": expected input (N, C, H, W) with 4 dims, got shape ", x.shape());
  check_float(op, x, "input");
  return pool_geom_of(op, x.shape(), a, is_max);
}

// The geometry of pooling a (N, C, H, W) input of this shape (pool_geom checked rank and dtype).
PoolGeom pool_geom_of(const char* op, const Shape& shape, const Pool2dArgs& a, bool is_max) {
  const auto& k = a.kernel_size;
  const auto s = a.stride[0] == 0 && a.stride[1] == 0 ? a.kernel_size : a.stride;
  const auto& p = a.padding;
  const auto& d = a.dilation;
  LOOM_CHECK(shape[1] >= 1 && shape[2] >= 1 && shape[3] >= 1, op,
             ": expected non-empty C, H and W, got input shape ", shape);
  LOOM_CHECK(k[0] >= 1 && k[1] >= 1, op, ": kernel_size must be positive, got ", dims_str(k.data(), 2));
  LOOM_CHECK(s[0] >= 1 && s[1] >= 1, op, ": stride must be positive, got ", dims_str(s.data(), 2));
  LOOM_CHECK(d[0] >= 1 && d[1] >= 1, op, ": dilation must be positive, got ", dims_str(d.data(), 2));
  LOOM_CHECK(is_max || (d[0] == 1 && d[1] == 1), op, ": dilation is only supported by max pooling, got ",
             dims_str(d.data(), 2));
  LOOM_CHECK(p[0] >= 0 && p[1] >= 0 && p[0] <= k[0] / 2 && p[1] <= k[1] / 2, op, ": padding ", dims_str(p.data(), 2),
             " must be non-negative and at most half of kernel_size ", dims_str(k.data(), 2));
  PoolGeom g{.N = shape[0], .C = shape[1], .H = shape[2], .W = shape[3], .OH = 0, .OW = 0,
             .KH = k[0], .KW = k[1], .sh = s[0], .sw = s[1], .ph = p[0], .pw = p[1], .dh = d[0], .dw = d[1],
             .count_include_pad = a.count_include_pad};
  g.OH = pool_out(g.H, g.KH, g.sh, g.ph, g.dh, a.ceil_mode);
  g.OW = pool_out(g.W, g.KW, g.sw, g.pw, g.dw, a.ceil_mode);
  LOOM_CHECK(g.OH >= 1 && g.OW >= 1, op, ": input ", shape, " is too small for kernel_size ", dims_str(k.data(), 2),
             " (dilation ", dims_str(d.data(), 2), ", padding ", dims_str(p.data(), 2), "): output would be ", g.OH,
             "x", g.OW);
  return g;
}

}  // namespace

Tensor conv2d(const Tensor& x, const Tensor& weight, const Tensor& bias, const Conv2dArgs& a) {
  check_conv("conv2d", 2, x, weight, bias, a.stride.data(), a.padding.data(), a.dilation.data(), a.groups);
  return conv2d_checked(x, weight, bias, a);
}

Tensor conv1d(const Tensor& x, const Tensor& weight, const Tensor& bias, const Conv1dArgs& a) {
  check_conv("conv1d", 1, x, weight, bias, &a.stride, &a.padding, &a.dilation, a.groups);
  const Conv2dArgs a2{
      .stride = {1, a.stride}, .padding = {0, a.padding}, .dilation = {1, a.dilation}, .groups = a.groups};
  return conv2d_checked(x.unsqueeze(2), weight.unsqueeze(2), bias, a2).squeeze(2);
}

std::pair<Tensor, Tensor> max_pool2d_with_indices(const Tensor& x, const Pool2dArgs& a) {
  const PoolGeom g = pool_geom("max_pool2d", x, a, true);
  Tensor y = make_tensor({g.N, g.C, g.OH, g.OW}, x.dtype(), x.device());
  Tensor idx = make_tensor({g.N, g.C, g.OH, g.OW}, DType::i64, x.device());
  backend_for(x).max_pool2d(y, idx, dense(x), g);
  if (needs_grad({x}))
    record("MaxPool2d", {y}, {x}, [si = save(idx, "max_pool2d"), g, dt = x.dtype(), dev = x.device()](const G& grads) {
      Tensor dx = make_tensor({g.N, g.C, g.H, g.W}, dt, dev);
      backend_for(dx).max_pool2d_backward(dx, grads[0].contiguous(), si.get(), g);
      return G{dx};
    });
  return {y, idx};
}

Tensor max_pool2d(const Tensor& x, const Pool2dArgs& a) { return max_pool2d_with_indices(x, a).first; }

Tensor relu_max_pool2d(const Tensor& x, const Pool2dArgs& a) {
  const PoolGeom g = pool_geom("relu_max_pool2d", x, a, true);
  Backend& be = backend_for(x);
  Tensor y = make_tensor({g.N, g.C, g.OH, g.OW}, x.dtype(), x.device());
  Tensor taps = make_tensor(y.shape(), DType::u8, x.device());
  if (!be.relu_max_pool2d_2x2(y, taps, dense(x), g)) return max_pool2d(relu(x), a);
  if (needs_grad({x}))
    record("ReluMaxPool2d", {y}, {x}, [st = save(taps, "relu_max_pool2d"), g, dt = x.dtype(), dev = x.device()](const G& grads) {
      Tensor dx = make_tensor({g.N, g.C, g.H, g.W}, dt, dev);
      LOOM_CHECK(backend_for(dx).relu_max_pool2d_2x2_backward(dx, grads[0].contiguous(), st.get(), g),
                 "relu_max_pool2d: backend ", backend_for(dx).name(), " ran the fused forward but has no backward");
      return G{dx};
    });
  return y;
}

Tensor conv2d_relu_max_pool2d(const Tensor& x, const Tensor& w, const Tensor& b, const Conv2dArgs& ca,
                              const Pool2dArgs& pa) {
  check_conv("conv2d", 2, x, w, b, ca.stride.data(), ca.padding.data(), ca.dilation.data(), ca.groups);
  const auto composed = [&] { return relu_max_pool2d(conv2d_checked(x, w, b, ca), pa); };
  if (needs_grad({x})) return composed();  // the fused backward computes no input gradient
  const ConvGeom cg = conv_geom(x, w, ca);
  const PoolGeom pg = pool_geom_of("relu_max_pool2d", Shape{cg.N, cg.OC, cg.OH, cg.OW}, pa, true);
  Backend& be = backend_for(x);
  Tensor xc = dense(x), wc = dense(w), bc = dense(b);
  Tensor y = make_tensor({pg.N, pg.C, pg.OH, pg.OW}, x.dtype(), x.device());
  Tensor taps = make_tensor(y.shape(), DType::u8, x.device());
  if (!be.conv2d_relu_max_pool2d(y, taps, xc, wc, bc.defined() ? &bc : nullptr, cg, pg)) return composed();
  if (needs_grad({w, b})) {
    const bool gw = w.requires_grad(), gb = b.defined() && b.requires_grad();
    record("Conv2dReluMaxPool2d", {y}, {x, w, b},
           [sx = save(xc, "conv2d_relu_max_pool2d"), st = save(taps, "conv2d_relu_max_pool2d"), cg, pg, gw, gb,
            wshape = w.shape(), dt = x.dtype(), dev = x.device()](const G& grads) {
             Tensor dw = make_tensor(wshape, dt, dev);  // computed even when only db is wanted: a few hundred floats
             Tensor db = gb ? make_tensor({cg.OC}, dt, dev) : Tensor();
             LOOM_CHECK(backend_for(dw).conv2d_relu_max_pool2d_weight_grad(dw, gb ? &db : nullptr, grads[0].contiguous(),
                                                                          st.get(), sx.get(), cg, pg),
                        "conv2d_relu_max_pool2d: backend ", backend_for(dw).name(),
                        " ran the fused forward but has no backward");
             return G{Tensor(), gw ? dw : Tensor(), db};
           });
  }
  return y;
}

Tensor avg_pool2d(const Tensor& x, const Pool2dArgs& a) {
  const PoolGeom g = pool_geom("avg_pool2d", x, a, false);
  Tensor y = make_tensor({g.N, g.C, g.OH, g.OW}, x.dtype(), x.device());
  backend_for(x).avg_pool2d(y, dense(x), g);
  if (needs_grad({x}))
    record("AvgPool2d", {y}, {x}, [g, dt = x.dtype(), dev = x.device()](const G& grads) {
      Tensor dx = make_tensor({g.N, g.C, g.H, g.W}, dt, dev);
      backend_for(dx).avg_pool2d_backward(dx, grads[0].contiguous(), g);
      return G{dx};
    });
  return y;
}

Tensor adaptive_avg_pool2d(const Tensor& x, std::array<int64_t, 2> output_size) {
  const char* op = "adaptive_avg_pool2d";
  LOOM_CHECK(x.defined(), op, ": the input tensor is undefined");
  LOOM_CHECK(x.dim() == 4, op, ": expected input (N, C, H, W) with 4 dims, got shape ", x.shape());
  check_float(op, x, "input");
  LOOM_CHECK(x.shape()[1] >= 1 && x.shape()[2] >= 1 && x.shape()[3] >= 1, op,
             ": expected non-empty C, H and W, got input shape ", x.shape());
  LOOM_CHECK(output_size[0] >= 1 && output_size[1] >= 1, op, ": output_size must be positive, got ",
             dims_str(output_size.data(), 2));
  const PoolGeom g{.N = x.shape()[0], .C = x.shape()[1], .H = x.shape()[2], .W = x.shape()[3],
                   .OH = output_size[0], .OW = output_size[1]};
  Tensor y = make_tensor({g.N, g.C, g.OH, g.OW}, x.dtype(), x.device());
  backend_for(x).adaptive_avg_pool2d(y, dense(x), g);
  if (needs_grad({x}))
    record("AdaptiveAvgPool2d", {y}, {x}, [g, dt = x.dtype(), dev = x.device()](const G& grads) {
      Tensor dx = make_tensor({g.N, g.C, g.H, g.W}, dt, dev);
      backend_for(dx).adaptive_avg_pool2d_backward(dx, grads[0].contiguous(), g);
      return G{dx};
    });
  return y;
}

}  // namespace loom
