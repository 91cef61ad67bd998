// scaled_dot_product_attention: argument checks, the composite path (any mask, dropout, weights) and the
// fused path (Backend::attention_forward, flash-attention style on the CPU) with its backward recorded beside its forward.
#include "loom/ops/attention.h"

#include <algorithm>
#include <cmath>
#include <limits>

#include "loom/autograd/function.h"
#include "loom/backend/backend.h"
#include "loom/core/dispatch.h"
#include "loom/ops/creation.h"
#include "loom/ops/elementwise.h"
#include "loom/ops/linalg.h"
#include "loom/ops/nn_functional.h"
#include "loom/ops/reduce.h"
#include "loom/ops/shape.h"

namespace loom {

using autograd::needs_grad;
using autograd::record;
using autograd::save;
using G = std::vector<Tensor>;

namespace {

constexpr double kInf = std::numeric_limits<double>::infinity();

struct Dims {
  int64_t Tq, Tk, D, Dv;
  double scale;
};

Dims check_args(const Tensor& q, const Tensor& k, const Tensor& v, const SDPAOptions& o) {
  const char* op = "scaled_dot_product_attention";
  LOOM_CHECK(q.defined() && k.defined() && v.defined(), op, ": q, k and v must all be defined");
  LOOM_CHECK(q.dim() >= 2 && k.dim() >= 2 && v.dim() >= 2, op, ": q, k, v need shape (..., T, D); got ", q.shape(),
             ", ", k.shape(), ", ", v.shape());
  LOOM_CHECK(is_floating(q.dtype()) && q.dtype() == k.dtype() && q.dtype() == v.dtype(), op,
             ": q, k, v must share one floating dtype; got ", q.dtype(), ", ", k.dtype(), ", ", v.dtype());
  Dims d{q.size(-2), k.size(-2), q.size(-1), v.size(-1), o.scale};
  LOOM_CHECK(k.size(-1) == d.D, op, ": q and k must have the same last dim (D); got ", q.shape(), " and ", k.shape());
  LOOM_CHECK(v.size(-2) == d.Tk, op, ": k and v must have the same number of keys (dim -2); got ", k.shape(), " and ",
             v.shape());
  LOOM_CHECK(o.dropout_p >= 0 && o.dropout_p < 1, op, ": dropout_p must be in [0, 1), got ", o.dropout_p);
  if (o.attn_mask.defined())
    LOOM_CHECK(o.attn_mask.dtype() == DType::boolean || is_floating(o.attn_mask.dtype()), op,
               ": attn_mask must be bool (true = attend) or floating (added to the scores), got ", o.attn_mask.dtype());
  if (d.scale == 0) d.scale = 1.0 / std::sqrt(double(d.D));
  return d;
}

// (Tq, Tk) bool: query i may see key j iff j <= i (PyTorch's top-left alignment).
Tensor causal_keep(int64_t Tq, int64_t Tk, Device d) {
  const Options o{.dtype = DType::i64, .device = d};
  return arange(Tk, o).view({1, Tk}) <= arange(Tq, o).view({Tq, 1});
}

}  // namespace

std::pair<Tensor, Tensor> attention_with_weights(const Tensor& q, const Tensor& k, const Tensor& v, const SDPAOptions& o) {
  const Dims d = check_args(q, k, v, o);
  Tensor s = matmul(q, k.transpose(-2, -1)) * d.scale;
  Tensor keep;
  if (o.is_causal) keep = causal_keep(d.Tq, d.Tk, q.device());
  if (o.attn_mask.defined()) {
    if (o.attn_mask.dtype() == DType::boolean) keep = keep.defined() ? logical_and(keep, o.attn_mask) : o.attn_mask;
    else s = s + o.attn_mask.to(s.dtype());
  }
  if (keep.defined()) s = where(keep, s, -kInf);
  // A softmax that leaves fully masked rows at zero (and their gradients finite): the row max is taken
  // without history (softmax does not depend on it) and an all -inf row divides by 1 instead of 0.
  Tensor m;
  {
    NoGradGuard ng;
    m = amax(s, {-1}, true);
    m = where(m.abs() == kInf, zeros_like(m), m);
  }
  Tensor e = exp(s - m);
  Tensor z = sum(e, {-1}, true);
  Tensor p = e / where(z == 0.0, ones_like(z), z);
  if (o.dropout_p > 0) p = dropout(p, o.dropout_p, true, o.generator);
  return {matmul(p, v), p};
}

Tensor scaled_dot_product_attention(const Tensor& q, const Tensor& k, const Tensor& v, const SDPAOptions& o) {
  check_args(q, k, v, o);
  const bool mask_ok = !o.attn_mask.defined() || !o.attn_mask.requires_grad();
  const bool same_lead = q.shape().size() == k.shape().size() && q.shape().size() == v.shape().size() &&
                         std::equal(q.shape().begin(), q.shape().end() - 2, k.shape().begin()) &&
                         std::equal(q.shape().begin(), q.shape().end() - 2, v.shape().begin());
  if (o.dropout_p == 0 && mask_ok && same_lead) return fused_attention(q, k, v, o);  // a backend entry on every device
  return attention_with_weights(q, k, v, o).first;
}

namespace {

// The mask as the kernel reads it: converted to the kernel's dtype if floating, broadcast to
// (lead..., Tq, Tk) without copying, with one offset per flattened (lead...) index.
AttentionMask prepare_mask(const Tensor& mask, const Tensor& q, int64_t Tq, int64_t Tk) {
  AttentionMask km;
  if (!mask.defined()) return km;
  LOOM_CHECK(mask.dim() <= q.dim(), "scaled_dot_product_attention: attn_mask of shape ", mask.shape(),
             " has more dims than the query ", q.shape());
  Shape full(q.shape().begin(), q.shape().end() - 2);
  full.push_back(Tq);
  full.push_back(Tk);
  Tensor m = mask.dtype() == DType::boolean ? mask.detach() : mask.detach().to(q.dtype());
  km.t = m.expand(full);  // errors with the shapes when it does not broadcast
  const int64_t lead = int64_t(full.size()) - 2;
  int64_t BH = 1;
  for (int64_t d = 0; d < lead; ++d) BH *= full[d];
  km.bh_offset.resize(BH);
  for (int64_t bh = 0; bh < BH; ++bh) {
    int64_t rem = bh, off = km.t.offset();
    for (int64_t d = lead - 1; d >= 0; --d) {
      off += (rem % full[d]) * km.t.stride(d);
      rem /= full[d];
    }
    km.bh_offset[bh] = off;
  }
  km.si = km.t.stride(-2);
  km.sj = km.t.stride(-1);
  return km;
}

// The element distance between consecutive (b, h) slices when t's last two dims are packed rows (stride D, 1)
// and its leading dims flatten to one evenly spaced index; 0 otherwise.
int64_t bh_stride(const Tensor& t) {
  const int64_t n = t.dim();
  if (n < 3 || t.stride(n - 1) != 1 || t.stride(n - 2) != t.size(n - 1)) return 0;
  int64_t inner = -1, expect = 0;  // walk the leading dims of size > 1 from the innermost out
  for (int64_t i = n - 3; i >= 0; --i) {
    if (t.size(i) == 1) continue;
    if (inner < 0) inner = t.stride(i);
    else if (t.stride(i) != expect) return 0;
    expect = t.stride(i) * t.size(i);
  }
  return inner < 0 ? 0 : inner;
}

}  // namespace

Tensor fused_attention(const Tensor& q0, const Tensor& k0, const Tensor& v0, const SDPAOptions& o) {
  const Dims d = check_args(q0, k0, v0, o);
  const char* op = "fused_attention";
  LOOM_CHECK(o.dropout_p == 0, op, ": dropout needs the composite path (scaled_dot_product_attention picks it)");
  LOOM_CHECK(!o.attn_mask.defined() || !o.attn_mask.requires_grad(), op,
             ": an attn_mask that requires grad needs the composite path");
  LOOM_CHECK(q0.dim() == k0.dim() && q0.dim() == v0.dim() &&
                 std::equal(q0.shape().begin(), q0.shape().end() - 2, k0.shape().begin()) &&
                 std::equal(q0.shape().begin(), q0.shape().end() - 2, v0.shape().begin()),
             op, ": q, k, v must share their leading dims; got ", q0.shape(), ", ", k0.shape(), ", ", v0.shape());
  const bool grad = needs_grad({q0, k0, v0});
  // Without a graph (decoding), k and v whose rows are packed but whose (b, h) slices are spaced out (the
  // first Tk rows of a KV cache) are read in place; backward wants packed tensors.
  int64_t k_stride = grad ? 0 : bh_stride(k0), v_stride = grad ? 0 : bh_stride(v0);
  Tensor q = q0.detach().contiguous();
  Tensor k = k_stride ? k0.detach() : k0.detach().contiguous(), v = v_stride ? v0.detach() : v0.detach().contiguous();
  int64_t BH = 1;
  for (int64_t i = 0; i + 2 < q.dim(); ++i) BH *= q.size(i);
  AttnShape shape{BH, d.Tq, d.Tk, d.D, d.Dv, d.scale, o.is_causal};
  shape.k_bh_stride = k_stride;
  shape.v_bh_stride = v_stride;
  auto km = std::make_shared<AttentionMask>(prepare_mask(o.attn_mask, q, d.Tq, d.Tk));
  Shape out_shape(q.shape().begin(), q.shape().end() - 1);
  out_shape.push_back(d.Dv);
  Tensor out = make_tensor(out_shape, q.dtype(), q.device());
  Tensor lse = make_tensor({BH, d.Tq}, q.dtype(), q.device());
  if (out.numel() > 0) backend_for(q).attention_forward(shape, out, lse, q, k, v, *km);
  if (grad)
    record("ScaledDotProductAttention", {out}, {q0, k0, v0},
           [sq = save(q, op), sk = save(k, op), sv = save(v, op), so = save(out, op), sl = save(lse, op), km, shape](const G& g) {
             const Tensor& q = sq.get();
             const Tensor& k = sk.get();
             const Tensor& v = sv.get();
             Tensor go = g[0].contiguous();
             Tensor dq = make_tensor(q.shape(), q.dtype(), q.device());
             Tensor dk = make_tensor(k.shape(), k.dtype(), k.device());
             Tensor dv = make_tensor(v.shape(), v.dtype(), v.device());
             if (dq.numel() + dk.numel() + dv.numel() > 0)
               backend_for(q).attention_backward(shape, dq, dk, dv, q, k, v, *km, so.get(), sl.get(), go);
             return G{dq, dk, dv};
           });
  return out;
}

Tensor slot_attention(const Tensor& q, const Tensor& k_cache, const Tensor& v_cache, std::span<const int64_t> rows,
                      std::span<const int64_t> lengths) {
  const char* op = "slot_attention";
  LOOM_CHECK(q.defined() && k_cache.defined() && v_cache.defined(), op, ": q and the caches must be defined");
  LOOM_CHECK(q.dim() == 4 && q.size(2) == 1, op, ": expected q of shape (n, H, 1, D), got ", q.shape());
  LOOM_CHECK(k_cache.dim() == 4 && k_cache.shape() == v_cache.shape(), op,
             ": the caches must share one shape (slots, H, L, D); got ", k_cache.shape(), " and ", v_cache.shape());
  const int64_t n = q.size(0), H = q.size(1), D = q.size(3), S = k_cache.size(0), L = k_cache.size(2);
  LOOM_CHECK(k_cache.size(1) == H && k_cache.size(3) == D, op, ": q ", q.shape(), " does not match the caches ",
             k_cache.shape(), " (heads and head size)");
  LOOM_CHECK(is_floating(q.dtype()) && q.dtype() == k_cache.dtype() && q.dtype() == v_cache.dtype(), op,
             ": q and the caches must share one floating dtype; got ", q.dtype(), ", ", k_cache.dtype(), ", ",
             v_cache.dtype());
  LOOM_CHECK(q.device() == k_cache.device() && q.device() == v_cache.device(), op,
             ": q and the caches must be on one device");
  LOOM_CHECK(k_cache.is_contiguous() && v_cache.is_contiguous(), op, ": the caches must be contiguous");
  LOOM_CHECK(int64_t(rows.size()) == n && int64_t(lengths.size()) == n, op, ": ", n, " query rows need ", n,
             " slots and lengths; got ", rows.size(), " and ", lengths.size());
  LOOM_CHECK(!needs_grad({q, k_cache, v_cache}), op, ": forward only (decoding); run it under NoGradGuard");
  // Tk is the longest row's length, not the slots' capacity L: the kernel sizes its parallel split by it.
  int64_t longest = 1;
  for (int64_t len : lengths) longest = std::max(longest, len);
  AttnShape shape{n * H, 1, std::min(longest, L), D, D, 1.0 / std::sqrt(double(D)), false};
  shape.kv_bh_offset.resize(size_t(n * H));
  shape.bh_keys.resize(size_t(n * H));
  for (int64_t i = 0; i < n; ++i) {
    const int64_t r = rows[size_t(i)], len = lengths[size_t(i)];
    LOOM_CHECK(r >= 0 && r < S, op, ": slot ", r, " is outside [0, ", S, ")");
    LOOM_CHECK(len >= 1 && len <= L, op, ": slot ", r, " length ", len, " is outside [1, ", L, "]");
    for (int64_t h = 0; h < H; ++h) {
      shape.kv_bh_offset[size_t(i * H + h)] = (r * H + h) * L * D;
      shape.bh_keys[size_t(i * H + h)] = len;
    }
  }
  Tensor qc = q.contiguous();
  Tensor out = make_tensor(q.shape(), q.dtype(), q.device());
  Tensor lse = make_tensor({n * H, 1}, q.dtype(), q.device());
  if (out.numel() > 0) backend_for(qc).attention_forward(shape, out, lse, qc, k_cache, v_cache, AttentionMask{});
  return out;
}

}  // namespace loom
