#include "loom/nn/sequence_loss.h"

#include <algorithm>

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

Tensor sequence_mask(const Tensor& lengths, int64_t max_len) {
  LOOM_CHECK(lengths.defined() && lengths.dim() == 1 && lengths.dtype() == DType::i64,
             "sequence_mask: lengths must be a 1-D int64 tensor");
  const Tensor len = lengths.contiguous();
  const int64_t B = len.size(0);
  const int64_t* l = len.data<int64_t>();
  int64_t L = max_len;
  if (L < 0) L = B ? *std::max_element(l, l + B) : 0;
  Tensor out = make_tensor({B, L}, DType::boolean);
  bool* m = out.data<bool>();
  for (int64_t b = 0; b < B; ++b) {
    LOOM_CHECK(l[b] >= 0 && l[b] <= L, "sequence_mask: lengths[", b, "] = ", l[b], " is outside [0, ", L, "]");
    for (int64_t t = 0; t < L; ++t) m[b * L + t] = t < l[b];
  }
  return out;
}

Tensor sequence_lengths(const Tensor& ids, int64_t pad_id) {
  LOOM_CHECK(ids.defined() && ids.dim() == 2 && ids.dtype() == DType::i64,
             "sequence_lengths: ids must be an int64 (B, T) tensor");
  const Tensor x = ids.contiguous();
  const int64_t B = x.size(0), T = x.size(1);
  Tensor out = make_tensor({B}, DType::i64);
  for (int64_t b = 0; b < B; ++b) {
    int64_t n = 0;
    for (int64_t t = 0; t < T; ++t) n += x.data<int64_t>()[b * T + t] != pad_id;
    out.data<int64_t>()[b] = n;
  }
  return out;
}

}  // namespace loom
