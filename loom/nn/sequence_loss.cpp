#include "loom/nn/sequence_loss.h"

#include <algorithm>

#include "loom/autograd/grad_mode.h"
#include "loom/core/error.h"
#include "loom/ops/ops.h"

namespace loom {

Tensor sequence_cross_entropy(const Tensor& logits, const Tensor& target, const SequenceLossOptions& o) {
  LOOM_CHECK(logits.defined() && logits.dim() == 3, "sequence_cross_entropy: logits must be (B, T, V), got ",
             logits.defined() ? logits.shape() : Shape{});
  LOOM_CHECK(target.defined() && target.dtype() == DType::i64, "sequence_cross_entropy: target must be int64 (B, T)");
  LOOM_CHECK(target.shape() == Shape({logits.size(0), logits.size(1)}), "sequence_cross_entropy: target ",
             target.shape(), " does not match logits ", logits.shape(), " (expected (B, T) = (", logits.size(0), ", ",
             logits.size(1), "))");
  const int64_t B = logits.size(0), T = logits.size(1), V = logits.size(2);
  // Rows of (B * T, V) are what the fused kernel wants: the class dim last, no (N, C, T) transpose copy.
  const Reduction r = o.reduction;
  LOOM_CHECK(r != Reduction::BatchMean, "sequence_cross_entropy: reduction must be None, Mean or Sum");
  Tensor loss = cross_entropy(logits.reshape({B * T, V}), target.reshape({B * T}),
                              {.ignore_index = o.ignore_index, .reduction = r, .label_smoothing = o.label_smoothing});
  return r == Reduction::None ? loss.reshape({B, T}) : loss;
}

// Both with tensor ops (comparisons and sums run on the tensors' device); lengths are checked from two scalars.
Tensor sequence_mask(const Tensor& lengths, int64_t max_len) {
  LOOM_CHECK(lengths.defined() && lengths.dim() == 1 && lengths.dtype() == DType::i64,
             "sequence_mask: lengths must be a 1-D int64 tensor");
  NoGradGuard ng;
  const int64_t B = lengths.size(0);
  const int64_t lo = B ? int64_t(min(lengths.to(DType::f64)).item()) : 0;
  const int64_t hi = B ? int64_t(max(lengths.to(DType::f64)).item()) : 0;
  const int64_t L = max_len < 0 ? hi : max_len;
  LOOM_CHECK(lo >= 0 && hi <= L, "sequence_mask: lengths must lie in [0, ", L, "], got values in [", lo, ", ", hi, "]");
  const Tensor t = arange(L, {.dtype = DType::i64, .device = lengths.device()}).view({1, L});
  return t < lengths.view({B, 1});
}

Tensor sequence_lengths(const Tensor& ids, int64_t pad_id) {
  LOOM_CHECK(ids.defined() && ids.dim() == 2 && ids.dtype() == DType::i64,
             "sequence_lengths: ids must be an int64 (B, T) tensor");
  NoGradGuard ng;
  return sum((ids != double(pad_id)).to(DType::f64), {1}).to(DType::i64);
}

}  // namespace loom
