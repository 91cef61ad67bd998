// Per-sample gradients, as Opacus's grad samplers compute them: one forward and one backward of the whole
// batch, then each supported layer's per-sample weight gradient from its input and its output gradient
// (Linear, Conv2d, Embedding, LayerNorm). Any other parametrised layer (LSTM, GRU, RNN, MultiheadAttention's
// raw projections, a module's own raw parameters) takes a per-layer batch-1 fallback: that layer alone runs
// again per sample with its slice of the output gradient; the result is checked to sum to the batch gradient.
// When that cannot hold (a layer fed time-major tensors, a tied weight used outside its layer, dropout inside
// the layer) the whole model runs one forward/backward per sample (per_sample_grads_loop), which the tests also
// use as the reference.
//   auto ps = loom::privacy::per_sample_grads(model, x, y, loss_sum);    // ps.grads[i]: (N, *params[i].shape)
//   Tensor norms = ps.norms();                                           // (N) L2 norm over all parameters
#pragma once
#include <functional>
#include <string>
#include <vector>

#include "loom/core/tensor.h"
#include "loom/nn/module.h"

namespace loom::privacy {

// The loss of a batch as the SUM over its samples (so each sample's gradient is its own, unscaled).
using SumLossFn = std::function<Tensor(const Tensor& output, const Tensor& target)>;
SumLossFn cross_entropy_sum();

struct PerSampleGrads {
  std::vector<std::string> names;  // named_parameters() order
  std::vector<Tensor> params;
  std::vector<Tensor> grads;  // grads[i] is (N, *params[i].shape), f32
  double loss_sum = 0;        // the batch's summed loss (for logging)
  Tensor output;              // the batch's model output, detached (for accuracy)
  bool vectorised = true;     // false when the whole-model batch-1 loop ran
  std::vector<std::string> per_layer_fallback;  // layers without a grad sampler, run again per sample
  Tensor norms() const;       // (N): each sample's gradient norm over all parameters
};

// The first parametrised module without a vectorised grad sampler ("" when every layer has one): not a Linear,
// Conv2d (groups 1), Embedding or LayerNorm. Such a model takes the per-layer fallback.
std::string vectorised_unsupported(nn::Module& model);

// The vectorised path when the model allows it, else the batch-1 loop. Leaves the parameters' .grad as
// backward left them (the caller overwrites them with the private gradient).
PerSampleGrads per_sample_grads(nn::Module& model, const Tensor& x, const Tensor& y, const SumLossFn& loss);
// Every layer through the per-layer batch-1 fallback, even those with a grad sampler (to test one against the other).
PerSampleGrads per_sample_grads_layer_fallback(nn::Module& model, const Tensor& x, const Tensor& y,
                                              const SumLossFn& loss);
// One forward + backward per sample: slow, exact, works for every model (the reference and the fallback).
PerSampleGrads per_sample_grads_loop(nn::Module& model, const Tensor& x, const Tensor& y, const SumLossFn& loss);

// Each sample's gradient clipped to norm max_grad_norm and summed over the batch, without materialising the
// per-sample gradients of Linear layers (ghost clipping, Li et al. 2022; Opacus's fast gradient clipping): their
// per-sample norms come from the input and output gradient alone, their clipped sum is one GEMM. Other layers
// are materialised one at a time. Models without grad samplers take the batch-1 loop.
struct ClippedSum {
  std::vector<std::string> names;
  std::vector<Tensor> params, sums;  // sums[i] has params[i]'s shape
  Tensor norms;                      // (N): each sample's gradient norm before clipping
  double loss_sum = 0;
  Tensor output;
};
ClippedSum clipped_sum(nn::Module& model, const Tensor& x, const Tensor& y, const SumLossFn& loss,
                       double max_grad_norm);

// im2col for one NCHW batch: (N, C*kH*kW, Ho*Wo), rows ordered (c, kh, kw) as a conv weight is.
Tensor unfold2d(const Tensor& x, int64_t kh, int64_t kw, int64_t sh, int64_t sw, int64_t ph, int64_t pw, int64_t dh,
                int64_t dw);

}  // namespace loom::privacy
