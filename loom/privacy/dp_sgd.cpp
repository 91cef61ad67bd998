// DP-SGD's clip/noise step. The sum is divided by the EXPECTED batch size q·N, not the drawn one: dividing by
// the drawn size would make the update depend on how many samples were drawn, which the privacy analysis of
// the sampled Gaussian mechanism does not cover (Opacus does the same).
#include "loom/privacy/dp_sgd.h"

#include <cmath>

#include "loom/autograd/grad_mode.h"
#include "loom/ops/ops.h"

namespace loom::privacy {

std::vector<int64_t> poisson_sample(int64_t n, double q, Generator& gen) {
  LOOM_CHECK(q > 0 && q <= 1, "poisson_sample: sample rate must be in (0, 1], got ", q);
  std::vector<int64_t> idx;
  for (int64_t i = 0; i < n; ++i)
    if (gen.next_double() < q) idx.push_back(i);
  return idx;
}

std::vector<Tensor> clip_and_sum(const PerSampleGrads& ps, double max_grad_norm) {
  LOOM_CHECK(max_grad_norm > 0, "clip_and_sum: max_grad_norm must be > 0, got ", max_grad_norm);
  NoGradGuard ng;
  const Tensor factor = (max_grad_norm / (ps.norms() + 1e-6)).clamp(std::nullopt, 1.0);  // (N)
  std::vector<Tensor> out;
  for (const Tensor& g : ps.grads) {
    const int64_t n = g.size(0);
    // (1, N) @ (N, P): the weighted sum over samples as one GEMV.
    out.push_back(mm(factor.reshape({1, n}), g.reshape({n, -1})).reshape(g.shape().size() > 1
                                                                               ? Shape(g.shape().begin() + 1, g.shape().end())
                                                                               : Shape{}));
  }
  return out;
}

DpSgd::DpSgd(nn::Module& model, DpOptions o) : model_(model), o_(o), gen_(o.seed) {
  LOOM_CHECK(o.noise_multiplier >= 0, "dp: noise multiplier must be >= 0, got ", o.noise_multiplier);
  LOOM_CHECK(o.max_grad_norm > 0, "dp: clipping norm must be > 0, got ", o.max_grad_norm);
  LOOM_CHECK(o.sample_rate > 0 && o.sample_rate <= 1, "dp: sample rate must be in (0, 1], got ", o.sample_rate);
}

PerSampleGrads DpSgd::private_grads(const Tensor& x, const Tensor& y, const SumLossFn& loss, int64_t dataset_size) {
  PerSampleGrads ps;
  std::vector<Tensor> summed;
  std::vector<Tensor> params;
  for (const auto& [name, p] : model_.named_parameters())
    if (p.requires_grad()) params.push_back(p);
  if (x.defined() && x.size(0) > 0 && o_.vectorised) {
    ClippedSum cs = clipped_sum(model_, x, y, loss, o_.max_grad_norm);
    summed = cs.sums;
    ps.names = cs.names, ps.params = cs.params, ps.loss_sum = cs.loss_sum, ps.output = cs.output;
  } else if (x.defined() && x.size(0) > 0) {
    ps = per_sample_grads_loop(model_, x, y, loss);
    summed = clip_and_sum(ps, o_.max_grad_norm);
  } else {
    for (const Tensor& p : params) summed.push_back(zeros(p.shape()));
  }
  NoGradGuard ng;
  const double expected = o_.sample_rate * double(dataset_size);
  const double std = o_.noise_multiplier * o_.max_grad_norm;
  for (size_t i = 0; i < params.size(); ++i) {
    Tensor g = summed[i].contiguous().clone();
    if (std > 0) {
      float* d = g.data<float>();
      for (int64_t k = 0; k < g.numel(); ++k) d[k] += float(std * gen_.next_normal());
    }
    params[i].set_grad(g / expected);
  }
  acc_.step(o_.noise_multiplier, o_.sample_rate, 1);
  return ps;
}

}  // namespace loom::privacy
