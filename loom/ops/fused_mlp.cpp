// gelu_mlp (fused_mlp.h): one autograd node over both Linears, so that backward can hand gelu' to the product that
// makes the hidden gradient (dpre = (dY W2) * gelu'(pre)) instead of materialising dY W2 first.
#include "loom/ops/fused_mlp.h"

#include "loom/autograd/function.h"
#include "loom/autograd/grad_mode.h"
#include "loom/backend/backend.h"
#include "loom/ops/autocast.h"
#include "loom/ops/creation.h"
#include "loom/ops/elementwise.h"
#include "loom/ops/linalg.h"
#include "loom/ops/reduce.h"

namespace loom {

namespace {

const float* f32_or_null(const Tensor& t) { return t.defined() ? static_cast<const float*>(t.raw_data()) : nullptr; }

// The fused path's operands: f32 throughout, weights and biases contiguous, no autocast (bf16 products go the
// composite way, whose Linears run them).
bool fusable(const Tensor& x, const Tensor& w1, const Tensor& b1, const Tensor& w2, const Tensor& b2) {
  if (autocast_enabled()) return false;
  for (const Tensor* t : {&x, &w1, &b1, &w2, &b2})
    if (t->defined() && (t->dtype() != DType::f32 || t->device() != x.device())) return false;
  for (const Tensor* t : {&w1, &b1, &w2, &b2})
    if (t->defined() && !t->is_contiguous()) return false;
  return true;
}

}  // namespace

Tensor gelu_mlp(const Tensor& x, const Tensor& w1, const Tensor& b1, const Tensor& w2, const Tensor& b2,
                const std::string& approximate) {
  LOOM_CHECK(approximate == "none" || approximate == "tanh", "gelu_mlp: approximate must be 'none' or 'tanh', got '",
             approximate, "'");
  LOOM_CHECK(w1.defined() && w2.defined() && w1.dim() == 2 && w2.dim() == 2 && w2.size(1) == w1.size(0),
             "gelu_mlp: expected w1 (inner, in) and w2 (out, inner), got ", w1.defined() ? w1.shape() : Shape{}, " and ",
             w2.defined() ? w2.shape() : Shape{});
  LOOM_CHECK(x.dim() >= 1 && x.size(-1) == w1.size(1), "gelu_mlp: input of shape ", x.shape(),
             " does not match w1 of shape ", w1.shape(), " (expected last dim ", w1.size(1), ")");
  const int64_t in = w1.size(1), inner = w1.size(0), out = w2.size(0);
  LOOM_CHECK(!b1.defined() || (b1.dim() == 1 && b1.size(0) == inner), "gelu_mlp: b1 must have shape [", inner, "], got ",
             b1.shape());
  LOOM_CHECK(!b2.defined() || (b2.dim() == 1 && b2.size(0) == out), "gelu_mlp: b2 must have shape [", out, "], got ",
             b2.shape());
  auto composite = [&] { return linear(gelu(linear(x, w1, b1), approximate), w2, b2); };
  if (!fusable(x, w1, b1, w2, b2)) return composite();
  const bool tanh = approximate == "tanh";
  Tensor x2 = (x.dim() == 2 ? x : x.reshape({-1, in})).contiguous();
  const int64_t rows = x2.size(0);
  Tensor pre = make_tensor({rows, inner}, DType::f32, x.device()), act = make_tensor({rows, inner}, DType::f32, x.device());
  if (!backend_for(act).gemm_gelu_f32(false, true, rows, inner, in, static_cast<const float*>(x2.raw_data()), in,
                                      static_cast<const float*>(w1.raw_data()), in, f32_or_null(b1),
                                      static_cast<float*>(act.raw_data()), inner, static_cast<float*>(pre.raw_data()),
                                      tanh ? GeluEpilogue::ForwardTanh : GeluEpilogue::Forward))
    return composite();
  Tensor y;
  {
    NoGradGuard plain;  // this op records the node for both products
    y = linear(act, w2, b2);
  }
  if (autograd::needs_grad({x2, w1, b1, w2, b2})) {
    const bool gx = x2.requires_grad(), gw1 = w1.requires_grad(), gb1 = b1.defined() && b1.requires_grad(),
               gw2 = w2.requires_grad(), gb2 = b2.defined() && b2.requires_grad();
    autograd::record(
        "GeluMlp", {y}, {x2, w1, b1, w2, b2},
        [sx = autograd::save(gw1 ? x2 : Tensor(), "gelu_mlp"), sw1 = autograd::save(gx ? w1 : Tensor(), "gelu_mlp"),
         sw2 = autograd::save(w2, "gelu_mlp"), spre = autograd::save(pre, "gelu_mlp"),
         sact = autograd::save(gw2 ? act : Tensor(), "gelu_mlp"), gx, gw1, gb1, gw2, gb2, tanh, rows, inner,
         out](const std::vector<Tensor>& g) {
          const Tensor dy = g[0].contiguous();
          std::vector<Tensor> grads(5);
          if (gw2) grads[3] = mm(dy.t(), sact.get());
          if (gb2) grads[4] = sum(dy, {0});
          if (!(gx || gw1 || gb1)) return grads;
          Tensor dpre = make_tensor({rows, inner}, DType::f32, dy.device());
          const Tensor& w2v = sw2.get();
          const bool fused = backend_for(dpre).gemm_gelu_f32(
              false, false, rows, inner, out, static_cast<const float*>(dy.raw_data()), out,
              static_cast<const float*>(w2v.raw_data()), inner, nullptr, static_cast<float*>(dpre.raw_data()), inner,
              static_cast<float*>(spre.get().raw_data()),
              tanh ? GeluEpilogue::BackwardTanh : GeluEpilogue::Backward);
          // The forward's product was fused on the same backend and the same rows, so this one is too.
          LOOM_CHECK(fused, "gelu_mlp backward: the backend declined the fused product its forward ran");
          if (gw1) grads[1] = mm(dpre.t(), sx.get());
          if (gb1) grads[2] = sum(dpre, {0});
          if (gx) grads[0] = mm(dpre, sw1.get());
          return grads;
        });
  }
  if (x.dim() == 2) return y;
  Shape shape(x.shape().begin(), x.shape().end() - 1);
  shape.push_back(out);
  return y.view(shape);
}

}  // namespace loom
