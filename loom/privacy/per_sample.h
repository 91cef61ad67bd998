// Per-sample gradients, as Opacus's grad samplers compute them: one forward and one backward of the whole
// batch, then each supported layer's per-sample weight gradient from its input and its output gradient
// (Linear, Conv2d, Embedding, LayerNorm). A model holding any other parametrised layer falls back to one
// forward/backward per sample (per_sample_grads_loop), which the tests also use as the reference.
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
  bool vectorised = true;     // false when the batch-1 fallback ran
  Tensor norms() const;       // (N): each sample's gradient norm over all parameters
};

// Why a model cannot use the vectorised path ("" when it can): the first parametrised module that is not a
// Linear, Conv2d (groups 1), Embedding or LayerNorm.
std::string vectorised_unsupported(nn::Module& model);

// The vectorised path when the model allows it, else the batch-1 loop. Leaves the parameters' .grad as
// backward left them (the caller overwrites them with the private gradient).
PerSampleGrads per_sample_grads(nn::Module& model, const Tensor& x, const Tensor& y, const SumLossFn& loss);
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
