// Losses over padded token sequences (seq2seq decoders, language models).
//   Tensor loss = loom::sequence_cross_entropy(logits, labels);      // (B, T, V), (B, T) with 0 = <pad>
//   Tensor mask = loom::sequence_mask(lengths, /*max_len=*/T);       // bool (B, T): t < lengths[b]
// Padding positions add nothing to the loss and are not counted in the mean: the same number as
// torch.nn.functional.cross_entropy(logits.reshape(-1, V), labels.reshape(-1), ignore_index=pad).
#pragma once
#include "loom/core/tensor.h"
#include "loom/nn/loss.h"

namespace loom {

struct SequenceLossOptions {
  int64_t ignore_index = 0;  // the padding id (WordVocab::kPad)
  // Mean: sum over real tokens / their count (every token weighs the same). Sum: the total. None: (B, T)
  // per-token losses with zeros at padding.
  Reduction reduction = Reduction::Mean;
  double label_smoothing = 0.0;
};

// logits: (B, T, V) floating; target: int64 (B, T). Differentiable in logits (the fused cross-entropy kernel).
Tensor sequence_cross_entropy(const Tensor& logits, const Tensor& target, const SequenceLossOptions& o = {});

// bool (B, max_len): true where t < lengths[b]. lengths: int64 (B) in [0, max_len]; max_len < 0 uses max(lengths).
Tensor sequence_mask(const Tensor& lengths, int64_t max_len = -1);

// int64 (B): the count of entries of each row of ids (B, T) that differ from pad_id.
Tensor sequence_lengths(const Tensor& ids, int64_t pad_id = 0);

}  // namespace loom
