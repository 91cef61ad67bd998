// Hinton's knowledge-distillation loss. The soft term is fused: its forward runs without a graph and one node
// carries its gradient, (softmax(s / T) - softmax(t / T)) * alpha * T / rows, instead of the chain of
// divide / log_softmax / softmax / multiply / sum nodes (and their (rows, C) intermediates) a composite would
// keep alive until backward. The hard term is the fused cross_entropy.
#include "loom/autograd/function.h"
#include "loom/autograd/grad_mode.h"
#include "loom/nn/loss.h"
#include "loom/ops/elementwise.h"
#include "loom/ops/reduce.h"
#include "loom/ops/shape.h"

#include <cmath>

namespace loom {

using G = std::vector<Tensor>;

Tensor distillation_loss(const Tensor& student, const Tensor& teacher, const Tensor& target,
                         const DistillationOptions& o) {
  const char* op = "distillation_loss";
  const double T = o.temperature, alpha = o.alpha;
  LOOM_CHECK(std::isfinite(T) && T > 0, op, ": temperature must be a finite number > 0, got ", T);
  LOOM_CHECK(alpha >= 0 && alpha <= 1, op, ": alpha must be in [0, 1], got ", alpha);
  LOOM_CHECK(student.defined() && teacher.defined(), op, ": student and teacher logits must be defined tensors");
  LOOM_CHECK(is_floating(student.dtype()), op, ": student logits must be floating point, got ", student.dtype());
  LOOM_CHECK(student.dim() >= 1 && student.numel() > 0, op,
             ": student logits must be non-empty (..., classes), got shape ", student.shape());
  LOOM_CHECK(teacher.shape() == student.shape(), op, ": teacher logits of shape ", teacher.shape(),
             " do not match the student's ", student.shape(),
             " (the two models must agree on the number of classes / the vocabulary)");
  LOOM_CHECK(teacher.dtype() == student.dtype(), op, ": teacher logits must have the student's dtype ",
             student.dtype(), ", got ", teacher.dtype());
  const int64_t C = student.size(-1), R = student.numel() / C;
  Shape rows_shape = student.shape();
  rows_shape.pop_back();
  if (target.defined()) {
    LOOM_CHECK(target.dtype() == DType::i64, op, ": target must hold int64 class indices, got ", target.dtype());
    LOOM_CHECK(target.shape() == rows_shape, op, ": target of shape ", target.shape(),
               " does not match student logits of shape ", student.shape(), " (expected ", rows_shape, ")");
  } else {
    LOOM_CHECK(alpha == 1, op, ": a target is needed when alpha < 1 (got alpha ", alpha, ")");
  }

  Tensor soft, q, p;
  {
    NoGradGuard ng;
    Tensor s = student.detach().reshape({R, C}), t = teacher.detach().reshape({R, C});
    Tensor log_q = log_softmax(s * (1.0 / T), 1), log_p = log_softmax(t * (1.0 / T), 1);
    p = exp(log_p);
    // Where the teacher's probability underflows to 0, log_p is still finite (log_softmax), so 0 * finite = 0:
    // no 0 * log 0 to guard.
    soft = sum(p * (log_p - log_q)) * (alpha * T * T / double(R));
    q = exp(log_q);
  }
  if (autograd::needs_grad({student})) {
    autograd::record("DistillationKL", {soft}, {student},
                     [q, p, scale = alpha * T / double(R), shape = student.shape()](const G& g) {
                       return G{((q - p) * (g[0] * scale)).reshape(shape)};
                     });
  }
  if (alpha == 1) return soft;
  Tensor hard = cross_entropy(student.reshape({R, C}), target.reshape({R}));
  return soft + hard * (1.0 - alpha);
}

}  // namespace loom
