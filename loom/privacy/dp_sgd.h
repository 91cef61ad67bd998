// DP-SGD (Abadi et al. 2016) as Opacus runs it: Poisson-sampled batches, per-sample gradients clipped to
// norm C, their sum plus N(0, (σC)^2) noise, divided by the expected batch size q·N; then any optimizer steps.
//   privacy::DpSgd dp(model, {.noise_multiplier = 1.1, .max_grad_norm = 1.0, .sample_rate = 256.0 / 60000});
//   auto idx = dp.sample(60000);                        // this step's Poisson batch (may be empty)
//   dp.private_grads(x, y, privacy::cross_entropy_sum());  opt.step();   dp.epsilon(1e-5);
#pragma once
#include <cstdint>
#include <vector>

#include "loom/core/generator.h"
#include "loom/nn/module.h"
#include "loom/privacy/per_sample.h"
#include "loom/privacy/rdp.h"

namespace loom::privacy {

struct DpOptions {
  double noise_multiplier = 1.0;  // σ: noise std as a multiple of max_grad_norm
  double max_grad_norm = 1.0;     // C: each sample's gradient is scaled to norm <= C
  double sample_rate = 0.01;      // q: each sample joins a batch with this probability
  uint64_t seed = 0;              // for the Poisson sampler and the noise (reproducible runs)
  bool vectorised = true;         // false: the batch-1 loop even where layers have grad samplers
};

// The indices (ascending) of a Poisson sample of {0..n-1}: each kept with probability q.
std::vector<int64_t> poisson_sample(int64_t n, double q, Generator& gen);

// Each sample's gradients scaled by min(1, C / (norm + 1e-6)) and summed: one tensor per parameter.
std::vector<Tensor> clip_and_sum(const PerSampleGrads& ps, double max_grad_norm);

class DpSgd {
 public:
  DpSgd(nn::Module& model, DpOptions o);
  std::vector<int64_t> sample(int64_t dataset_size) { return poisson_sample(dataset_size, o_.sample_rate, gen_); }
  // Sets each parameter's .grad to the private gradient of this batch and charges one step to the accountant.
  // x may hold zero samples (an empty Poisson batch): the gradient is then noise alone, as it must be.
  // Returns the batch's loss and output in a PerSampleGrads (the per-sample gradients themselves only on the
  // batch-1 path: the vectorised path clips without materialising them).
  PerSampleGrads private_grads(const Tensor& x, const Tensor& y, const SumLossFn& loss, int64_t dataset_size);
  double epsilon(double delta) const { return acc_.epsilon(delta); }
  const RdpAccountant& accountant() const { return acc_; }
  RdpAccountant& accountant() { return acc_; }  // a resumed run puts the checkpoint's state back (dp_fit.h)
  const DpOptions& options() const { return o_; }
  Generator& generator() { return gen_; }

 private:
  nn::Module& model_;
  DpOptions o_;
  Generator gen_;
  RdpAccountant acc_;
};

}  // namespace loom::privacy
