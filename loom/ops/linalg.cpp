// Matrix products on the backend's GEMM. Transposed operands are passed to GEMM as flags, never copied;
// backward of mm is two more mm calls on transposed views. Under autocast (autocast.h) f32 products go to
// the backend's bf16 GEMM; each node records whether it did, and its backward re-enters the same mode, so
// the gradient products match the forward's precision even when the guard is gone by backward time.
#include "loom/ops/linalg.h"

#include "loom/autograd/function.h"
#include "loom/backend/backend.h"
#include "loom/ops/autocast.h"
#include "loom/ops/creation.h"
#include "loom/ops/elementwise.h"
#include "loom/ops/reduce.h"
#include "loom/ops/shape.h"

namespace loom {

using autograd::needs_grad;
using autograd::record;
using autograd::save;
using G = std::vector<Tensor>;

namespace {

// How a 2-d operand is handed to GEMM: as is (row-major), transposed, or copied first.
struct GemmArg {
  Tensor t;
  bool trans;
  int64_t ld;
};
GemmArg as_gemm_arg(const Tensor& m) {
  const int64_t r = m.shape()[0], c = m.shape()[1];
  const int64_t s0 = m.strides()[0], s1 = m.strides()[1];
  if ((s1 == 1 || c == 1) && (s0 >= std::max<int64_t>(c, 1) || r == 1)) return {m, false, std::max<int64_t>(s0, std::max<int64_t>(c, 1))};
  if ((s0 == 1 || r == 1) && (s1 >= std::max<int64_t>(r, 1) || c == 1)) return {m, true, std::max<int64_t>(s1, std::max<int64_t>(r, 1))};
  Tensor cm = m.detach().contiguous();
  return {cm, false, std::max<int64_t>(c, 1)};
}

// Whether a product of `dt` operands runs in bf16 right now: autocast on and f32 operands (f64 stays f64).
bool use_bf16(DType dt) { return dt == DType::f32 && autocast_dtype() == DType::bf16; }

// out(M,N) = a(M,K) @ b(K,N) (+ beta * out); bf16: operands rounded to bf16, f32 accumulation.
void gemm_into(Tensor& out, const Tensor& a, const Tensor& b, double beta = 0.0, bool bf16 = false) {
  GemmArg A = as_gemm_arg(a), B = as_gemm_arg(b);
  const int64_t M = a.shape()[0], K = a.shape()[1], N = b.shape()[1];
  if (K == 0) { if (beta == 0.0) backend_for(out).fill(out, 0.0); return; }
  if (bf16)
    backend_for(out).gemm_bf16(A.trans, B.trans, M, N, K, 1.0, static_cast<const float*>(A.t.raw_data()), A.ld,
                               static_cast<const float*>(B.t.raw_data()), B.ld, beta, static_cast<float*>(out.raw_data()),
                               std::max<int64_t>(N, 1));
  else
    backend_for(out).gemm(A.trans, B.trans, M, N, K, 1.0, A.t.raw_data(), A.ld, B.t.raw_data(), B.ld, beta,
                          out.raw_data(), std::max<int64_t>(N, 1), out.dtype());
}

// out = a b + bias through the backend's fused path (f32, no autocast, contiguous bias); false where it has
// none, with out untouched.
bool gemm_bias_into(Tensor& out, const Tensor& a, const Tensor& b, const Tensor& bias) {
  if (out.dtype() != DType::f32 || bias.dtype() != DType::f32 || !bias.is_contiguous()) return false;
  GemmArg A = as_gemm_arg(a), B = as_gemm_arg(b);
  const int64_t M = a.shape()[0], K = a.shape()[1], N = b.shape()[1];
  return backend_for(out).gemm_bias_f32(A.trans, B.trans, M, N, K, static_cast<const float*>(A.t.raw_data()), A.ld,
                                        static_cast<const float*>(B.t.raw_data()), B.ld, static_cast<const float*>(bias.raw_data()),
                                        static_cast<float*>(out.raw_data()), std::max<int64_t>(N, 1));
}

// The precision a node's forward used, for its backward closure.
DType product_dtype(bool bf16) { return bf16 ? DType::bf16 : DType::f32; }

void check_float_pair(const Tensor& a, const Tensor& b, const char* op) {
  LOOM_CHECK(a.dtype() == b.dtype(), op, ": expected both operands to have the same dtype, got ", a.dtype(), " and ", b.dtype());
  LOOM_CHECK(a.dtype() == DType::f32 || a.dtype() == DType::f64, op, ": expected float32 or float64 operands, got ", a.dtype());
}

}  // namespace

Tensor mm(const Tensor& a, const Tensor& b) {
  LOOM_CHECK(a.dim() == 2 && b.dim() == 2, "mm: expected 2-d tensors, got shapes ", a.shape(), " and ", b.shape());
  LOOM_CHECK(a.shape()[1] == b.shape()[0], "mm: shapes ", a.shape(), " and ", b.shape(), " cannot be multiplied (",
             a.shape()[1], " != ", b.shape()[0], ")");
  check_float_pair(a, b, "mm");
  Tensor y = make_tensor({a.shape()[0], b.shape()[1]}, a.dtype(), a.device());
  const bool bf16 = use_bf16(a.dtype());
  gemm_into(y, a, b, 0.0, bf16);
  if (needs_grad({a, b}))
    record("Mm", {y}, {a, b}, [sa = save(b.requires_grad() ? a : Tensor(), "mm"), sb = save(a.requires_grad() ? b : Tensor(), "mm"),
                               ga = a.requires_grad(), gb = b.requires_grad(), bf16](const G& g) {
      AutocastGuard same(product_dtype(bf16));
      return G{ga ? mm(g[0], sb.get().t()) : Tensor(), gb ? mm(sa.get().t(), g[0]) : Tensor()};
    });
  return y;
}

Tensor bmm(const Tensor& a, const Tensor& b) {
  LOOM_CHECK(a.dim() == 3 && b.dim() == 3, "bmm: expected 3-d tensors, got shapes ", a.shape(), " and ", b.shape());
  LOOM_CHECK(a.shape()[0] == b.shape()[0] && a.shape()[2] == b.shape()[1], "bmm: shapes ", a.shape(), " and ", b.shape(),
             " cannot be multiplied");
  check_float_pair(a, b, "bmm");
  const int64_t B = a.shape()[0], M = a.shape()[1], N = b.shape()[2];
  Tensor y = make_tensor({B, M, N}, a.dtype(), a.device());
  const bool bf16 = use_bf16(a.dtype());
  for (int64_t i = 0; i < B; ++i) {
    Tensor yi = make_view(y, {M, N}, {N, 1}, i * M * N);
    gemm_into(yi, make_view(a, {M, a.shape()[2]}, {a.strides()[1], a.strides()[2]}, a.offset() + i * a.strides()[0]),
              make_view(b, {b.shape()[1], N}, {b.strides()[1], b.strides()[2]}, b.offset() + i * b.strides()[0]), 0.0, bf16);
  }
  if (needs_grad({a, b}))
    record("Bmm", {y}, {a, b}, [sa = save(a, "bmm"), sb = save(b, "bmm"), ga = a.requires_grad(), gb = b.requires_grad(), bf16](const G& g) {
      AutocastGuard same(product_dtype(bf16));
      return G{ga ? bmm(g[0], sb.get().transpose(1, 2)) : Tensor(), gb ? bmm(sa.get().transpose(1, 2), g[0]) : Tensor()};
    });
  return y;
}

Tensor matmul(const Tensor& a, const Tensor& b) {
  LOOM_CHECK(a.dim() >= 1 && b.dim() >= 1, "matmul: both arguments need at least 1 dimension, got shapes ", a.shape(),
             " and ", b.shape());
  if (a.dim() == 1 && b.dim() == 1) {
    LOOM_CHECK(a.shape()[0] == b.shape()[0], "matmul: 1-d tensors of sizes ", a.shape()[0], " and ", b.shape()[0],
               " cannot be multiplied");
    return sum(a * b);
  }
  if (a.dim() == 1) return matmul(a.unsqueeze(0), b).squeeze(-2);
  if (b.dim() == 1) return matmul(a, b.unsqueeze(1)).squeeze(-1);
  if (a.dim() == 2 && b.dim() == 2) return mm(a, b);
  const int64_t M = a.shape()[size_t(a.dim() - 2)], K = a.shape()[size_t(a.dim() - 1)];
  const int64_t K2 = b.shape()[size_t(b.dim() - 2)], N = b.shape()[size_t(b.dim() - 1)];
  LOOM_CHECK(K == K2, "matmul: shapes ", a.shape(), " and ", b.shape(), " cannot be multiplied (", K, " != ", K2, ")");
  if (b.dim() == 2) {
    // (..., M, K) @ (K, N): fold the batch into the rows, one GEMM.
    Shape out(a.shape().begin(), a.shape().end() - 1);
    out.push_back(N);
    return mm(a.reshape({-1, K}), b).view(out);
  }
  Shape ba(a.shape().begin(), a.shape().end() - 2), bb(b.shape().begin(), b.shape().end() - 2);
  Shape batch = broadcast_shapes(ba, bb, "matmul");
  Shape ea = batch, eb = batch;
  ea.insert(ea.end(), {M, K});
  eb.insert(eb.end(), {K, N});
  const int64_t nb = numel(batch);
  Tensor y = bmm(a.expand(ea).reshape({nb, M, K}), b.expand(eb).reshape({nb, K, N}));
  Shape out = batch;
  out.insert(out.end(), {M, N});
  return y.view(out);
}

Tensor linear(const Tensor& x, const Tensor& w, const Tensor& bias) {
  LOOM_CHECK(w.dim() == 2, "linear: weight must be 2-d (out_features, in_features), got shape ", w.shape());
  LOOM_CHECK(x.dim() >= 1 && x.shape().back() == w.shape()[1], "linear: input of shape ", x.shape(),
             " does not match weight of shape ", w.shape(), " (expected last dim ", w.shape()[1], ")");
  check_float_pair(x, w, "linear");
  const int64_t in = w.shape()[1], out_f = w.shape()[0];
  Tensor x2 = x.dim() == 2 ? x : x.reshape({-1, in});
  const int64_t rows = x2.shape()[0];
  Tensor y = make_tensor({rows, out_f}, x.dtype(), x.device());
  const bool bf16 = use_bf16(x.dtype());
  if (bias.defined()) {
    LOOM_CHECK(bias.dim() == 1 && bias.shape()[0] == out_f, "linear: bias must have shape [", out_f, "], got ", bias.shape());
    if (bf16 || !gemm_bias_into(y, x2, w.t(), bias)) {
      backend_for(y).copy(y, bias);  // broadcast the bias into every row, then GEMM accumulates on top (bias stays f32)
      gemm_into(y, x2, w.t(), 1.0, bf16);
    }
  } else {
    gemm_into(y, x2, w.t(), 0.0, bf16);
  }
  if (needs_grad({x2, w, bias}))
    record("Linear", {y}, {x2, w, bias}, [sx = save(w.requires_grad() ? x2 : Tensor(), "linear"), sw = save(x2.requires_grad() ? w : Tensor(), "linear"),
                                          gx = x2.requires_grad(), gw = w.requires_grad(), gb = bias.defined() && bias.requires_grad(), bf16](const G& g) {
      AutocastGuard same(product_dtype(bf16));
      return G{gx ? mm(g[0], sw.get()) : Tensor(), gw ? mm(g[0].t(), sx.get()) : Tensor(), gb ? sum(g[0], {0}) : Tensor()};
    });
  if (x.dim() == 2) return y;
  Shape out(x.shape().begin(), x.shape().end() - 1);
  out.push_back(out_f);
  return y.view(out);
}

}  // namespace loom
