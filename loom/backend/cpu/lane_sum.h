// The sum of a 16-lane f32 AVX-512 vector (a dot product's accumulator), for the kernels that dot rows. Only
// for functions that carry LOOM_TARGET_AVX512 themselves (isa.h).
//   float s = loom::cpu::lane_sum_avx512(acc);
#pragma once
#include "loom/backend/cpu/isa.h"
#if defined(LOOM_X86_KERNELS)
#include <immintrin.h>

namespace loom::cpu {

// Halves added down to four lanes. (GCC 12's _mm512_reduce_add_ps and its 512-to-256-bit casts and extracts
// start from an "undefined" vector that -Wuninitialized reports inside its own header; these do not.)
[[gnu::always_inline]] LOOM_TARGET_AVX512 inline float lane_sum_avx512(__m512 v) {
  using v8 = float __attribute__((vector_size(32)));
  using v4 = float __attribute__((vector_size(16)));
  const v8 h = __builtin_shufflevector(v, v, 0, 1, 2, 3, 4, 5, 6, 7) +
               __builtin_shufflevector(v, v, 8, 9, 10, 11, 12, 13, 14, 15);
  const v4 q = __builtin_shufflevector(h, h, 0, 1, 2, 3) + __builtin_shufflevector(h, h, 4, 5, 6, 7);
  return (q[0] + q[2]) + (q[1] + q[3]);
}

}  // namespace loom::cpu
#endif
