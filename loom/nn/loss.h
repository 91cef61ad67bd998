// Loss functions, like torch.nn.functional.* losses and the torch.nn loss modules (PyTorch 1.13 semantics).
//   Tensor loss = loom::cross_entropy(logits, labels, {.ignore_index = 0, .label_smoothing = 0.1});
//   nn::BCEWithLogitsLoss crit({.pos_weight = pw});  Tensor l = crit(logits, targets);  l.backward();
// All losses are differentiable in `input` (and in a floating `target` where PyTorch's is).
#pragma once
#include "loom/core/tensor.h"

namespace loom {

// How per-element losses are combined. BatchMean (sum / batch size) is only valid for kl_div.
enum class Reduction { None, Mean, Sum, BatchMean };

struct ReductionOptions {  // mse_loss, l1_loss
  Reduction reduction = Reduction::Mean;
};

struct SmoothL1Options {
  Reduction reduction = Reduction::Mean;
  double beta = 1.0;  // quadratic below |d| < beta; beta == 0 is l1_loss
};

struct HuberOptions {
  Reduction reduction = Reduction::Mean;
  double delta = 1.0;  // quadratic below |d| < delta, then delta * (|d| - delta / 2)
};

struct CrossEntropyOptions {
  Tensor weight = {};           // (C) rescaling per class; undefined: all ones
  int64_t ignore_index = -100;  // class-index targets equal to this contribute nothing (and are not counted)
  Reduction reduction = Reduction::Mean;  // Mean divides by the summed weight of the non-ignored targets
  double label_smoothing = 0.0;           // in [0, 1]: mixes the target with the uniform distribution
};

struct NLLOptions {
  Tensor weight = {};
  int64_t ignore_index = -100;
  Reduction reduction = Reduction::Mean;
};

struct BCEOptions {
  Tensor weight = {};  // broadcasts against the input
  Reduction reduction = Reduction::Mean;
};

struct BCEWithLogitsOptions {
  Tensor weight = {};  // broadcasts against the input
  Reduction reduction = Reduction::Mean;
  Tensor pos_weight = {};  // weight of positive examples, broadcasts along the last (class) dim
};

struct KLDivOptions {
  Reduction reduction = Reduction::Mean;  // PyTorch's default; BatchMean is the mathematically right one
  bool log_target = false;                // target given as log-probabilities
};

// Knowledge distillation (Hinton et al., 2015): the student's logits learn the teacher's softened distribution
// and the labels. See distillation_loss.
struct DistillationOptions {
  double temperature = 1.0;  // T > 0: both softmaxes run on logits / T; T > 1 shows the teacher's small scores
  double alpha = 0.5;        // in [0, 1]: weight of the teacher term; 1 - alpha weighs the label cross-entropy
};

// Regression losses: input and target must have the same shape.
Tensor mse_loss(const Tensor& input, const Tensor& target, const ReductionOptions& o = {});
Tensor l1_loss(const Tensor& input, const Tensor& target, const ReductionOptions& o = {});
Tensor smooth_l1_loss(const Tensor& input, const Tensor& target, const SmoothL1Options& o = {});
Tensor huber_loss(const Tensor& input, const Tensor& target, const HuberOptions& o = {});

// input: logits (C), (N, C) or (N, C, d1, ...). target: int64 class indices of shape (), (N) or (N, d1, ...),
// or floating class probabilities of the input's shape (then ignore_index does not apply).
// Class indices take a fused log_softmax + nll kernel with its own backward.
Tensor cross_entropy(const Tensor& input, const Tensor& target, const CrossEntropyOptions& o = {});
// input: log-probabilities shaped as for cross_entropy; target: int64 class indices.
Tensor nll_loss(const Tensor& input, const Tensor& target, const NLLOptions& o = {});

// input: probabilities in [0, 1]; each log is clamped to >= -100 as PyTorch does, so 0 and 1 are finite.
Tensor binary_cross_entropy(const Tensor& input, const Tensor& target, const BCEOptions& o = {});
// input: logits; computed as (1 - y) x + (1 + (pw - 1) y) softplus(-x), stable for any |x|.
Tensor binary_cross_entropy_with_logits(const Tensor& input, const Tensor& target, const BCEWithLogitsOptions& o = {});
// input: log-probabilities; target: probabilities (log-probabilities with log_target).
Tensor kl_div(const Tensor& input, const Tensor& target, const KLDivOptions& o = {});

// alpha * T^2 * KL(softmax(teacher / T) || softmax(student / T)) + (1 - alpha) * cross_entropy(student, target),
// the KL summed over classes and averaged over rows (PyTorch's kl_div 'batchmean'; T^2 keeps the soft term's
// gradient on the scale of the hard one's as T changes). Classes are on the LAST dim, as models emit them:
// (N, C) for a classifier, (B, T, V) for a language model (read as B*T rows of V). student and teacher have
// the same shape and dtype; target holds int64 class indices of the shape without the last dim (it may be
// undefined when alpha == 1). The teacher's logits are a constant: no gradient flows into them. The KL term is
// one node with its own backward, alpha * T / rows * (softmax(student / T) - softmax(teacher / T)).
Tensor distillation_loss(const Tensor& student, const Tensor& teacher, const Tensor& target,
                         const DistillationOptions& o = {});

namespace nn {

// A callable loss object with the PyTorch module name: nn::MSELoss crit({.reduction = Reduction::Sum});
template <class O, Tensor (*F)(const Tensor&, const Tensor&, const O&)>
class Loss {
 public:
  using Options = O;
  Loss() = default;
  explicit Loss(O opts) : options(std::move(opts)) {}
  Tensor forward(const Tensor& input, const Tensor& target) const { return F(input, target, options); }
  Tensor operator()(const Tensor& input, const Tensor& target) const { return F(input, target, options); }

  O options;
};

using MSELoss = Loss<ReductionOptions, &mse_loss>;
using L1Loss = Loss<ReductionOptions, &l1_loss>;
using SmoothL1Loss = Loss<SmoothL1Options, &smooth_l1_loss>;
using HuberLoss = Loss<HuberOptions, &huber_loss>;
using CrossEntropyLoss = Loss<CrossEntropyOptions, &cross_entropy>;
using NLLLoss = Loss<NLLOptions, &nll_loss>;
using BCELoss = Loss<BCEOptions, &binary_cross_entropy>;
using BCEWithLogitsLoss = Loss<BCEWithLogitsOptions, &binary_cross_entropy_with_logits>;
using KLDivLoss = Loss<KLDivOptions, &kl_div>;

}  // namespace nn

namespace detail {
// Applies a reduction to per-element losses (shared by the loss implementations).
Tensor reduce_loss(const Tensor& loss, Reduction r, const char* op);
const char* reduction_name(Reduction r);
}  // namespace detail

}  // namespace loom
