// Fused attention on the CPU (flash-attention style): scores are made one key tile at a time with an
// online softmax, so neither forward nor backward ever holds the Tq x Tk matrix; backward recomputes the
// scores from q, k and the per-row logsumexp that forward saves.
//   loom::cpu::flash_attention_forward<float>({BH, Tq, Tk, D, Dv, 0.125, true}, q, k, v, {}, out, lse);
#pragma once
#include <cstdint>

#include "loom/backend/kernel_args.h"

namespace loom::cpu {

// q (BH, Tq, D), k (BH, Tk, D), v (BH, Tk, Dv), out (BH, Tq, Dv), lse (BH, Tq): contiguous, or q, k, v, out (and
// dq, dk, dv, dout alike) read and written in place through AttnShape's layouts (kernel_args.h); lse is packed.
using loom::AttnShape;

// An optional mask read in place (it may be broadcast): element (bh, i, j) is at
// bh_offset[bh] + i * si + j * sj in `keep` (bool, true = attend) or `add` (added to the scaled score).
template <class T>
struct AttnMask {
  const bool* keep = nullptr;
  const T* add = nullptr;
  const int64_t* bh_offset = nullptr;
  int64_t si = 0, sj = 0;
};

// A row whose keys are all masked gets out = 0 and lse = -inf (and zero gradients in backward).
template <class T>
void flash_attention_forward(const AttnShape& s, const T* q, const T* k, const T* v, const AttnMask<T>& m, T* out, T* lse);

// Overwrites dq, dk, dv. Parallel over BH (each (b, h) owns its dk/dv rows and its dq).
template <class T>
void flash_attention_backward(const AttnShape& s, const T* q, const T* k, const T* v, const AttnMask<T>& m,
                              const T* out, const T* lse, const T* dout, T* dq, T* dk, T* dv);

}  // namespace loom::cpu
