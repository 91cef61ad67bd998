// Scaled dot-product attention, like torch.nn.functional.scaled_dot_product_attention.
//   Tensor y = loom::scaled_dot_product_attention(q, k, v, {.is_causal = true});   // (B, H, T, D) each
//   auto [y2, w] = loom::attention_with_weights(q, k, v, {.attn_mask = keep});     // also the (B, H, Tq, Tk) weights
#pragma once
#include <span>
#include <utility>

#include "loom/core/generator.h"
#include "loom/core/tensor.h"

namespace loom {

struct SDPAOptions {
  // bool (true = attend, PyTorch's convention) or float (added to the scores), broadcastable to
  // (..., Tq, Tk). A float mask that requires grad receives its gradient (composite path).
  Tensor attn_mask = Tensor();
  // Query i sees keys j <= i (PyTorch's top-left alignment, also when Tq != Tk).
  bool is_causal = false;
  double scale = 0;  // 0 means 1 / sqrt(D)
  double dropout_p = 0;  // on the attention weights; applied whenever > 0 (pass 0 in eval)
  Generator* generator = nullptr;  // for the dropout mask; default: the global generator
};

// q (..., Tq, D), k (..., Tk, D), v (..., Tk, Dv) -> (..., Tq, Dv); leading dims broadcast.
// A row whose keys are all masked gives zeros (and zero gradients), not NaN.
// Uses the fused kernel (tiles with an online softmax; never builds the Tq x Tk matrix) when there is
// no dropout, q/k/v share their leading dims and the mask needs no gradient; else the composite path.
Tensor scaled_dot_product_attention(const Tensor& q, const Tensor& k, const Tensor& v, const SDPAOptions& o = {});

// The composite form (matmul, mask, softmax, dropout, matmul) that also returns the attention weights
// (..., Tq, Tk) after dropout; what MultiheadAttention uses when need_weights is set.
std::pair<Tensor, Tensor> attention_with_weights(const Tensor& q, const Tensor& k, const Tensor& v, const SDPAOptions& o = {});

// The fused kernel alone (no fallback), for tests and benchmarks: errors when it cannot run the case.
Tensor fused_attention(const Tensor& q, const Tensor& k, const Tensor& v, const SDPAOptions& o = {});

// One new token per sequence against slotted key/value caches (S, H, L, D), as continuous batching decodes:
// row i of q (n, H, 1, D) attends over the first lengths[i] keys and values of slot rows[i], read in place
// (no copy of the caches, no padding to the longest row). Row i's result is exactly what attention over its
// own slot alone gives. Forward only (decoding: throws when an input requires grad).
//   Tensor y = loom::slot_attention(q, k_cache, v_cache, rows, lengths);   // (n, H, 1, D)
Tensor slot_attention(const Tensor& q, const Tensor& k_cache, const Tensor& v_cache, std::span<const int64_t> rows,
                      std::span<const int64_t> lengths);

}  // namespace loom
