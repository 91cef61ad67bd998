// Vectorised per-sample gradients. A forward hook on each parametrised layer keeps the layer's input and
// marks its output to retain its gradient; after one batched backward, each layer's per-sample weight
// gradient is a batched product of the two (Linear: g^T a per sample; Conv2d: g times the unfolded input;
// Embedding: a scatter of g rows; LayerNorm: g times the normalised input). This costs one extra batched GEMM
// per layer instead of N backward passes.
#include "loom/privacy/per_sample.h"


#include <cmath>

#include "loom/autograd/grad_mode.h"
#include "loom/backend/backend.h"
#include "loom/nn/conv_layers.h"
#include "loom/nn/embedding.h"
#include "loom/nn/linear.h"
#include "loom/nn/loss.h"
#include "loom/nn/norm_layers.h"
#include "loom/ops/ops.h"

namespace loom::privacy {

namespace {

struct Capture {
  nn::Module* module;
  Tensor input, output;
  bool has_grad = false, batch_first = false;  // set after the backward
};

// Every module in the tree, depth first.
void walk(nn::Module& m, const std::function<void(nn::Module&)>& fn) {
  fn(m);
  for (auto& [name, child] : m.named_children()) walk(*child, fn);
}

// (N, T, F): everything between the batch and the last dim folded into T.
Tensor as_ntf(const Tensor& t) { return t.contiguous().reshape({t.size(0), -1, t.size(t.dim() - 1)}); }

// C_n = op(A_n) · op(B_n) for each sample n (the Backend's per_sample_gemm: one small GEMM per sample; loom's
// bmm, which runs a batch of small GEMMs one after the other, was ~50x slower at per-sample sizes).
Tensor per_sample_gemm(const Tensor& a, bool ta, const Tensor& b, bool tb) {
  const Tensor A = a.contiguous().to(DType::f32), B = b.contiguous().to(DType::f32);
  LOOM_CHECK(A.dim() == 3 && B.dim() == 3, "per_sample_gemm: expected (N, rows, cols) operands, got ", A.shape(),
             " and ", B.shape());
  const int64_t m = ta ? A.size(2) : A.size(1), k = ta ? A.size(1) : A.size(2);
  const int64_t p = tb ? B.size(1) : B.size(2);
  LOOM_CHECK((tb ? B.size(2) : B.size(1)) == k && B.size(0) == A.size(0), "per_sample_gemm: shapes ", A.shape(),
             " and ", B.shape(), " do not multiply");
  Tensor C = empty({A.size(0), m, p}, {.device = A.device()});
  backend_for(A).per_sample_gemm(C, A, ta, B, tb);
  return C;
}

void linear_grads(nn::Linear& m, const Tensor& a, const Tensor& g, std::vector<std::pair<Tensor, Tensor>>& out) {
  const Tensor a3 = as_ntf(a), g3 = as_ntf(g);
  out.push_back({m.weight, per_sample_gemm(g3, true, a3, false)});  // (N, out, in) = g^T a per sample
  if (m.bias.defined()) out.push_back({m.bias, g3.sum({1})});
}

void conv_grads(nn::Conv2d& m, const Tensor& a, const Tensor& g, std::vector<std::pair<Tensor, Tensor>>& out) {
  const auto& o = m.options;
  const int64_t n = a.size(0), kh = m.weight.size(2), kw = m.weight.size(3);
  const Tensor cols = unfold2d(a, kh, kw, o.stride.h, o.stride.w, o.padding.h, o.padding.w, o.dilation.h,
                               o.dilation.w);                        // (N, Cin*kh*kw, L)
  const Tensor g3 = g.contiguous().reshape({n, g.size(1), -1});       // (N, Cout, L)
  out.push_back({m.weight, per_sample_gemm(g3, false, cols, true).reshape({n, m.weight.size(0), m.weight.size(1), kh, kw})});
  if (m.bias.defined()) out.push_back({m.bias, g3.sum({2})});
}

void embedding_grads(nn::Embedding& m, const Tensor& idx, const Tensor& g,
                     std::vector<std::pair<Tensor, Tensor>>& out) {
  const int64_t n = idx.size(0), v = m.weight.size(0), d = m.weight.size(1);
  const Tensor ids = idx.contiguous().to(DType::i64).reshape({n, -1});  // (N, tokens per sample)
  Tensor src = g.contiguous().to(DType::f32).reshape({-1, d});             // one gradient row per token
  std::optional<int64_t> pad = m.options.padding_idx;
  if (pad && *pad < 0) *pad += v;
  if (pad) src = src * (ids.reshape({-1}) != *pad).to(DType::f32).unsqueeze(1);  // the padding row gets none
  // Row (s, id) of the (N*V, D) result: each sample's tokens add into its own copy of the table.
  const Tensor rows = (ids + arange(0, n, 1, {.dtype = DType::i64, .device = ids.device()}).unsqueeze(1) * v).reshape({-1});
  Tensor gw = index_add(zeros({n * v, d}, {.device = src.device()}), 0, rows, src).reshape({n, v, d});
  out.push_back({m.weight, gw});
}

void layer_norm_grads(nn::LayerNorm& m, const Tensor& a, const Tensor& g,
                      std::vector<std::pair<Tensor, Tensor>>& out) {
  const int64_t nd = int64_t(m.options.normalized_shape.size()), n = a.size(0);
  Shape norm_dims, mid_dims;
  for (int64_t d = a.dim() - nd; d < a.dim(); ++d) norm_dims.push_back(d);
  for (int64_t d = 1; d < a.dim() - nd; ++d) mid_dims.push_back(d);
  const Tensor mean = a.mean(norm_dims, true), var = a.var(norm_dims, 0, true);
  const Tensor xhat = (a - mean) * (var + m.options.eps).rsqrt();
  Shape ps = {n};
  for (int64_t s : m.options.normalized_shape) ps.push_back(s);
  auto reduce = [&](const Tensor& t) { return (mid_dims.empty() ? t : t.sum(mid_dims)).reshape(ps); };
  if (m.weight.defined()) out.push_back({m.weight, reduce(g * xhat)});
  if (m.bias.defined()) out.push_back({m.bias, reduce(g)});
}

bool has_own_params(nn::Module& m) { return !m.named_parameters(/*recurse=*/false).empty(); }

// Set by per_sample_grads_layer_fallback: every layer takes the per-layer fallback (tests compare the two).
thread_local bool g_force_layer_fallback = false;

bool has_sampler(nn::Module& m) {
  if (g_force_layer_fallback) return false;
  if (dynamic_cast<nn::Linear*>(&m) || dynamic_cast<nn::Embedding*>(&m) || dynamic_cast<nn::LayerNorm*>(&m)) return true;
  auto* c = dynamic_cast<nn::Conv2d*>(&m);
  return c && c->options.groups == 1;
}

}  // namespace

SumLossFn cross_entropy_sum() {
  return [](const Tensor& out, const Tensor& y) { return cross_entropy(out, y, {.reduction = Reduction::Sum}); };
}

Tensor PerSampleGrads::norms() const {
  LOOM_CHECK(!grads.empty(), "per-sample grads: no parameters");
  const int64_t n = grads[0].size(0);
  Tensor sq = zeros({n});
  for (const Tensor& g : grads) sq = sq + g.reshape({n, -1}).pow(2.0).sum({1});
  return sq.sqrt();
}

std::string vectorised_unsupported(nn::Module& model) {
  std::string bad;
  walk(model, [&](nn::Module& m) {
    if (!bad.empty() || !has_own_params(m) || has_sampler(m)) return;
    bad = m.name();
  });
  return bad;
}

namespace {

// One forward + backward of the batch with a hook on every parametrised module: its input and its output's
// gradient, in forward order.
std::vector<Capture> capture_backward(nn::Module& model, const Tensor& x, const Tensor& y, const SumLossFn& loss,
                                      double& loss_sum, Tensor& output) {
  LOOM_CHECK(x.dim() >= 1 && x.size(0) > 0, "per_sample_grads: empty batch, input shape ", x.shape());
  std::vector<Capture> caps;
  std::vector<std::pair<nn::Module*, int64_t>> hooks;
  walk(model, [&](nn::Module& m) {
    if (!has_own_params(m)) return;
    hooks.push_back({&m, m.register_forward_hook([&caps](nn::Module& mod, const Tensor& in, const Tensor& out) {
                       if (out.requires_grad()) out.retain_grad();
                       caps.push_back({&mod, in.detach(), out});
                     })});
  });
  try {
    Tensor out = model(x);
    Tensor l = loss(out, y);
    loss_sum = l.item();
    output = out.detach();
    l.backward();
  } catch (...) {
    for (auto& [m, id] : hooks) m->remove_forward_hook(id);
    throw;
  }
  for (auto& [m, id] : hooks) m->remove_forward_hook(id);
  for (auto& c : caps) {
    c.has_grad = c.output.grad().defined();
    c.batch_first = c.input.dim() >= 1 && c.input.size(0) == x.size(0) && c.output.dim() >= 1 &&
                    c.output.size(0) == x.size(0);
  }
  return caps;
}

// The vectorised samplers need every layer's output gradient, batch first.
void require_batch_first(const std::vector<Capture>& caps, int64_t n) {
  for (const auto& c : caps) {
    LOOM_CHECK(c.has_grad, "per_sample_grads: no gradient reached the output of ", c.module->name());
    LOOM_CHECK(c.batch_first, "per_sample_grads: ", c.module->name(), " output has batch ", c.output.size(0),
               ", the input batch is ", n, " (the batch must be dim 0 throughout)");
  }
}

// The batch-1 fallback for one layer without a grad sampler (an LSTM, GRU, attention with raw projection
// weights, a module's own raw parameters): the layer alone runs again on each sample's input and is
// back-propagated with that sample's slice of the output gradient the batched backward left, which gives the
// per-sample gradients of its own parameters (children with samplers are handled by theirs). It needs the layer
// to treat samples independently, batch first, and to reach the loss only through its output: the caller checks
// afterwards that the per-sample gradients sum to the batch gradient, and otherwise runs the whole-model loop.
void layer_loop_grads(const Capture& c, std::vector<std::pair<Tensor, Tensor>>& out) {
  std::vector<Tensor> own;
  for (const auto& [name, p] : c.module->named_parameters(/*recurse=*/false))
    if (p.requires_grad()) own.push_back(p);
  if (own.empty()) return;
  const int64_t n = c.input.size(0);
  std::vector<std::vector<Tensor>> rows(own.size());
  const Tensor g = c.output.grad();
  EnableGradGuard eg;
  for (int64_t s = 0; s < n; ++s) {
    for (auto& p : own) p.set_grad(Tensor());
    Tensor o = c.module->forward(c.input.narrow(0, s, 1));
    o.backward(g.narrow(0, s, 1).contiguous());
    for (size_t i = 0; i < own.size(); ++i) {
      const Tensor gi = own[i].grad();
      rows[i].push_back(gi.defined() ? gi.detach().clone() : zeros_like(own[i]));
    }
  }
  for (size_t i = 0; i < own.size(); ++i) out.push_back({own[i], stack(rows[i], 0)});
}

// Per-sample gradients of one captured layer, appended to `per` as (parameter, (N, *shape)).
void layer_grads(const Capture& c, std::vector<std::pair<Tensor, Tensor>>& per) {
  if (!has_sampler(*c.module)) return layer_loop_grads(c, per);
  const Tensor g = c.output.grad();
  if (auto* l = dynamic_cast<nn::Linear*>(c.module)) linear_grads(*l, c.input, g, per);
  else if (auto* cv = dynamic_cast<nn::Conv2d*>(c.module)) conv_grads(*cv, c.input, g, per);
  else if (auto* e = dynamic_cast<nn::Embedding*>(c.module)) embedding_grads(*e, c.input, g, per);
  else if (auto* ln = dynamic_cast<nn::LayerNorm*>(c.module)) layer_norm_grads(*ln, c.input, g, per);
}

bool same_param(const Tensor& a, const Tensor& b) { return a.is_same(b) || a.raw_data() == b.raw_data(); }

}  // namespace

PerSampleGrads per_sample_grads(nn::Module& model, const Tensor& x, const Tensor& y, const SumLossFn& loss) {
  PerSampleGrads r;
  model.zero_grad();  // the batched backward's gradient alone, for the check below
  const std::vector<Capture> caps = capture_backward(model, x, y, loss, r.loss_sum, r.output);
  for (const auto& c : caps)  // a layer fed time-major tensors (an LSTM without batch_first), or unused: the loop
    if (!c.batch_first || !c.has_grad) return per_sample_grads_loop(model, x, y, loss);
  // The batch gradient, for the check below (layer_loop_grads overwrites .grad of the layers it runs again).
  std::vector<std::pair<Tensor, Tensor>> batch_grad;
  for (const auto& [name, p] : model.named_parameters())
    if (p.requires_grad()) batch_grad.push_back({p, p.grad().defined() ? p.grad().detach().clone() : Tensor()});
  std::vector<std::pair<Tensor, Tensor>> per;  // (parameter, its per-sample gradient); a shared layer adds twice
  for (auto& c : caps) {
    if (!has_sampler(*c.module)) r.per_layer_fallback.push_back(c.module->name());
    NoGradGuard ng;
    layer_grads(c, per);
  }
  NoGradGuard ng;
  bool consistent = true;
  for (const auto& [name, p] : model.named_parameters()) {
    if (!p.requires_grad()) continue;
    Tensor sum;
    for (auto& [q, g] : per)
      if (same_param(q, p)) sum = sum.defined() ? sum + g : g;
    if (!sum.defined()) {  // a parameter the loss does not depend on: zero per-sample gradient
      Shape s{x.size(0)};
      s.insert(s.end(), p.shape().begin(), p.shape().end());
      sum = zeros(s);
    }
    r.names.push_back(name), r.params.push_back(p), r.grads.push_back(sum.contiguous());
  }
  // Per-layer fallbacks rest on assumptions (see layer_loop_grads): the per-sample gradients must add up to the
  // batch gradient, else a parameter is used outside its layer's forward (a tied head) or samples interact.
  if (!r.per_layer_fallback.empty()) {
    for (size_t i = 0; i < r.params.size() && consistent; ++i) {
      Tensor want;
      for (auto& [q, g] : batch_grad)
        if (q.is_same(r.params[i])) want = g;
      const Tensor got = r.grads[i].sum({0});
      const double scale = want.defined() ? want.abs().max().item() : 0.0;
      const double err = (want.defined() ? (got - want).abs().max() : got.abs().max()).item();
      consistent = err <= 1e-4 * scale + 1e-6;
    }
  }
  for (auto& [p, g] : batch_grad) p.set_grad(g);
  if (!consistent) return per_sample_grads_loop(model, x, y, loss);
  return r;
}

PerSampleGrads per_sample_grads_layer_fallback(nn::Module& model, const Tensor& x, const Tensor& y,
                                              const SumLossFn& loss) {
  struct Force {
    Force() { g_force_layer_fallback = true; }
    ~Force() { g_force_layer_fallback = false; }
  } force;
  return per_sample_grads(model, x, y, loss);
}

ClippedSum clipped_sum(nn::Module& model, const Tensor& x, const Tensor& y, const SumLossFn& loss,
                       double max_grad_norm) {
  LOOM_CHECK(max_grad_norm > 0, "clipped_sum: max_grad_norm must be > 0, got ", max_grad_norm);
  ClippedSum r;
  if (!vectorised_unsupported(model).empty()) {  // per-layer fallbacks (or the batch-1 loop), then clip and sum
    PerSampleGrads ps = per_sample_grads(model, x, y, loss);
    NoGradGuard ng;
    const Tensor f = (max_grad_norm / (ps.norms() + 1e-6)).clamp(std::nullopt, 1.0);
    for (size_t i = 0; i < ps.grads.size(); ++i) {
      const int64_t n = ps.grads[i].size(0);
      r.sums.push_back(mm(f.reshape({1, n}), ps.grads[i].reshape({n, -1})).reshape(ps.params[i].shape()));
    }
    r.names = ps.names, r.params = ps.params, r.norms = ps.norms(), r.loss_sum = ps.loss_sum, r.output = ps.output;
    return r;
  }
  const std::vector<Capture> caps = capture_backward(model, x, y, loss, r.loss_sum, r.output);
  require_batch_first(caps, x.size(0));
  NoGradGuard ng;
  const int64_t n = x.size(0);
  // Pass 1: each sample's squared gradient norm. Linear layers never materialise (N, out, in): for one
  // position per sample |g a^T|^2 = |g|^2 |a|^2, for T positions it is <A A^T, G G^T> (Gram matrices).
  Tensor sq = zeros({n});
  std::vector<std::pair<Tensor, Tensor>> per;   // materialised per-sample grads of the other layers
  for (const auto& c : caps) {
    if (auto* l = dynamic_cast<nn::Linear*>(c.module)) {
      const Tensor a3 = as_ntf(c.input), g3 = as_ntf(c.output.grad());
      if (a3.size(1) == 1)
        sq = sq + a3.pow(2.0).sum({1, 2}) * g3.pow(2.0).sum({1, 2});
      else
        sq = sq + (per_sample_gemm(a3, false, a3, true) * per_sample_gemm(g3, false, g3, true)).sum({1, 2});
      if (l->bias.defined()) sq = sq + g3.sum({1}).pow(2.0).sum({1});
    } else {
      const size_t before = per.size();
      layer_grads(c, per);
      for (size_t i = before; i < per.size(); ++i) sq = sq + per[i].second.reshape({n, -1}).pow(2.0).sum({1});
    }
  }
  r.norms = sq.sqrt();
  const Tensor f = (max_grad_norm / (r.norms + 1e-6)).clamp(std::nullopt, 1.0);  // (N)
  // Pass 2: the clip-weighted sums, one GEMM per Linear layer.
  std::vector<std::pair<Tensor, Tensor>> sums;
  for (const auto& c : caps) {
    if (auto* l = dynamic_cast<nn::Linear*>(c.module)) {
      const Tensor a3 = as_ntf(c.input), g3 = as_ntf(c.output.grad());
      const Tensor gw = (g3 * f.reshape({n, 1, 1})).reshape({-1, g3.size(2)});
      sums.push_back({l->weight, mm(gw.t(), a3.reshape({-1, a3.size(2)}))});
      if (l->bias.defined()) sums.push_back({l->bias, gw.sum({0})});
    }
  }
  for (auto& [p, g] : per)
    sums.push_back({p, mm(f.reshape({1, n}), g.reshape({n, -1})).reshape(p.shape())});
  for (const auto& [name, p] : model.named_parameters()) {
    if (!p.requires_grad()) continue;
    Tensor s;
    for (auto& [q, g] : sums)
      if (same_param(q, p)) s = s.defined() ? s + g : g;
    r.names.push_back(name), r.params.push_back(p), r.sums.push_back(s.defined() ? s.contiguous() : zeros(p.shape()));
  }
  return r;
}

PerSampleGrads per_sample_grads_loop(nn::Module& model, const Tensor& x, const Tensor& y, const SumLossFn& loss) {
  const int64_t n = x.size(0);
  LOOM_CHECK(n > 0 && y.size(0) == n, "per_sample_grads: ", n, " inputs but ", y.dim() ? y.size(0) : 0, " targets");
  PerSampleGrads r;
  r.vectorised = false;
  std::vector<std::vector<Tensor>> rows_of;  // [param][sample]
  std::vector<Tensor> outs;
  for (const auto& [name, p] : model.named_parameters())
    if (p.requires_grad()) r.names.push_back(name), r.params.push_back(p);
  rows_of.resize(r.params.size());
  for (int64_t s = 0; s < n; ++s) {
    model.zero_grad();
    Tensor out = model(x.narrow(0, s, 1));
    Tensor l = loss(out, y.narrow(0, s, 1));
    r.loss_sum += l.item();
    outs.push_back(out.detach());
    l.backward();
    for (size_t i = 0; i < r.params.size(); ++i) {
      Tensor g = r.params[i].grad();
      rows_of[i].push_back(g.defined() ? g.clone() : zeros_like(r.params[i]));
    }
  }
  for (auto& v : rows_of) r.grads.push_back(stack(v, 0));
  r.output = cat(outs, 0);
  return r;
}

Tensor unfold2d(const Tensor& x, int64_t kh, int64_t kw, int64_t sh, int64_t sw, int64_t ph, int64_t pw, int64_t dh,
                int64_t dw) {
  LOOM_CHECK(x.dim() == 4, "unfold2d: input must be (N, C, H, W), got ", x.shape());
  const Tensor xc = x.contiguous().to(DType::f32);
  const int64_t n = x.size(0), c = x.size(1), h = x.size(2), w = x.size(3);
  const int64_t ho = (h + 2 * ph - dh * (kh - 1) - 1) / sh + 1, wo = (w + 2 * pw - dw * (kw - 1) - 1) / sw + 1;
  LOOM_CHECK(ho > 0 && wo > 0, "unfold2d: kernel larger than the padded input ", x.shape());
  Tensor cols = empty({n, c * kh * kw, ho * wo}, {.device = xc.device()});
  const ConvGeom g{.N = n, .C = c, .H = h, .W = w, .OC = 0, .KH = kh, .KW = kw, .OH = ho, .OW = wo,
                   .sh = sh, .sw = sw, .ph = ph, .pw = pw, .dh = dh, .dw = dw};
  backend_for(xc).unfold2d(cols, xc, g);
  return cols;
}

}  // namespace loom::privacy
