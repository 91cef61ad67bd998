// skinny_gemm_bt: two rows of W at a time, dotted with up to 8 rows of A held in the loop (16 independent
// accumulator chains, enough to keep the FMA units busy); more rows of A are taken in balanced groups while
// the two rows of W are still in L1, so W is read from memory once whatever M is.
#include "loom/backend/cpu/skinny_gemm.h"

#include <algorithm>

#include <omp.h>

#include "loom/backend/cpu/isa.h"
#include "loom/backend/cpu/loop.h"
#include "loom/backend/cpu/lane_sum.h"

namespace loom::cpu {

namespace {

constexpr int kMaxGroup = 8;  // rows of A per pass: 2 x 8 accumulators + 8 + 2 operands fit AVX-512's 32 registers

#if defined(LOOM_X86_KERNELS)
// s0[r] = A[r] . w0 and s1[r] = A[r] . w1 for the R rows of A.
template <int R>
LOOM_TARGET_AVX512 inline void dot_two_avx512(int64_t K, const float* A, int64_t lda, const float* w0, const float* w1,
                                              const float* next0, const float* next1, float* s0, float* s1) {
  __m512 c0[R], c1[R];
#pragma GCC unroll 8
  for (int r = 0; r < R; ++r) c0[r] = c1[r] = _mm512_setzero_ps();
  int64_t k = 0;
  for (; k + 16 <= K; k += 16) {
    // The next two rows of W, a pass ahead: a weight matrix larger than the caches comes from memory while
    // this pass computes, instead of after it.
    _mm_prefetch(reinterpret_cast<const char*>(next0 + k), _MM_HINT_T0);
    _mm_prefetch(reinterpret_cast<const char*>(next1 + k), _MM_HINT_T0);
    const __m512 x0 = _mm512_loadu_ps(w0 + k), x1 = _mm512_loadu_ps(w1 + k);
#pragma GCC unroll 8
    for (int r = 0; r < R; ++r) {
      const __m512 a = _mm512_loadu_ps(A + r * lda + k);
      c0[r] = _mm512_fmadd_ps(a, x0, c0[r]);
      c1[r] = _mm512_fmadd_ps(a, x1, c1[r]);
    }
  }
  if (k < K) {  // the last K % 16 columns under a mask (masked lanes load as 0 and touch no memory)
    const __mmask16 m = __mmask16((1u << (K - k)) - 1u);
    const __m512 x0 = _mm512_maskz_loadu_ps(m, w0 + k), x1 = _mm512_maskz_loadu_ps(m, w1 + k);
#pragma GCC unroll 8
    for (int r = 0; r < R; ++r) {
      const __m512 a = _mm512_maskz_loadu_ps(m, A + r * lda + k);
      c0[r] = _mm512_fmadd_ps(a, x0, c0[r]);
      c1[r] = _mm512_fmadd_ps(a, x1, c1[r]);
    }
  }
#pragma GCC unroll 8
  for (int r = 0; r < R; ++r) {
    s0[r] = lane_sum_avx512(c0[r]);
    s1[r] = lane_sum_avx512(c1[r]);
  }
}
#endif

// The same in plain loops (GCC vectorises them for the build's ISA): CPUs without the AVX-512 kernels.
template <int R>
inline void dot_two_plain(int64_t K, const float* A, int64_t lda, const float* w0, const float* w1, float* s0,
                          float* s1) {
  for (int r = 0; r < R; ++r) {
    const float* a = A + r * lda;
    float t0 = 0, t1 = 0;
#pragma omp simd reduction(+ : t0, t1)
    for (int64_t k = 0; k < K; ++k) t0 += a[k] * w0[k], t1 += a[k] * w1[k];
    s0[r] = t0;
    s1[r] = t1;
  }
}

// wide: the AVX-512 kernel (cpu::has_avx512(), asked once per call of skinny_gemm_bt).
template <int R>
inline void dot_two(bool wide, int64_t K, const float* A, int64_t lda, const float* w0, const float* w1,
                    const float* next0, const float* next1, float* s0, float* s1) {
#if defined(LOOM_X86_KERNELS)
  if (wide) return dot_two_avx512<R>(K, A, lda, w0, w1, next0, next1, s0, s1);
#endif
  (void)next0, (void)next1;
  dot_two_plain<R>(K, A, lda, w0, w1, s0, s1);
}

inline void dot_group(bool wide, int rows, int64_t K, const float* A, int64_t lda, const float* w0, const float* w1,
                      const float* next0, const float* next1, float* s0, float* s1) {
  switch (rows) {
    case 1: return dot_two<1>(wide, K, A, lda, w0, w1, next0, next1, s0, s1);
    case 2: return dot_two<2>(wide, K, A, lda, w0, w1, next0, next1, s0, s1);
    case 3: return dot_two<3>(wide, K, A, lda, w0, w1, next0, next1, s0, s1);
    case 4: return dot_two<4>(wide, K, A, lda, w0, w1, next0, next1, s0, s1);
    case 5: return dot_two<5>(wide, K, A, lda, w0, w1, next0, next1, s0, s1);
    case 6: return dot_two<6>(wide, K, A, lda, w0, w1, next0, next1, s0, s1);
    case 7: return dot_two<7>(wide, K, A, lda, w0, w1, next0, next1, s0, s1);
    default: return dot_two<8>(wide, K, A, lda, w0, w1, next0, next1, s0, s1);
  }
}

#if defined(LOOM_X86_KERNELS)
// y[n] = alpha * W[n] . x (+ bias[n], + beta * y[n]) for rows [n0, n1): eight rows of W at a time, one accumulator
// each (8 independent FMA chains, 8 streams of W), no software prefetch. Measured on GPT-2's decode (2 threads, f32,
// interleaved runs): 8 rows x 1 accumulator ran ~3-5% faster than 4 rows x 2, and the pair kernel above with its
// prefetches ~10% slower than OpenBLAS's sgemv, which this beats by 10-15%.
LOOM_TARGET_AVX512 void gemv_rows_avx512(int64_t n0, int64_t n1, int64_t K, float alpha, const float* x, const float* W,
                                         int64_t ldw, float beta, const float* bias, float* y) {
  auto store = [&](int64_t n, float dot) {
    float v = alpha * dot;
    if (bias) v += bias[n];
    y[n] = beta == 0.0f ? v : v + beta * y[n];  // beta == 0 never reads y
  };
  const __mmask16 tail = __mmask16((1u << (K % 16)) - 1u);
  const int64_t K16 = K - K % 16;
  int64_t n = n0;
  for (; n + 8 <= n1; n += 8) {
    const float* w = W + n * ldw;
    __m512 a[8];
#pragma GCC unroll 8
    for (int r = 0; r < 8; ++r) a[r] = _mm512_setzero_ps();
    for (int64_t k = 0; k < K16; k += 16) {
      const __m512 xk = _mm512_loadu_ps(x + k);
#pragma GCC unroll 8
      for (int r = 0; r < 8; ++r) a[r] = _mm512_fmadd_ps(_mm512_loadu_ps(w + r * ldw + k), xk, a[r]);
    }
    if (tail) {  // masked lanes load as 0 and touch no memory
      const __m512 xk = _mm512_maskz_loadu_ps(tail, x + K16);
#pragma GCC unroll 8
      for (int r = 0; r < 8; ++r) a[r] = _mm512_fmadd_ps(_mm512_maskz_loadu_ps(tail, w + r * ldw + K16), xk, a[r]);
    }
    for (int r = 0; r < 8; ++r) store(n + r, lane_sum_avx512(a[r]));
  }
  for (; n < n1; ++n) {
    const float* w = W + n * ldw;
    __m512 a = _mm512_setzero_ps();
    for (int64_t k = 0; k < K16; k += 16) a = _mm512_fmadd_ps(_mm512_loadu_ps(w + k), _mm512_loadu_ps(x + k), a);
    if (tail) a = _mm512_fmadd_ps(_mm512_maskz_loadu_ps(tail, w + K16), _mm512_maskz_loadu_ps(tail, x + K16), a);
    store(n, lane_sum_avx512(a));
  }
}
#endif

}  // namespace

bool gemv_bt(int64_t N, int64_t K, float alpha, const float* x, const float* W, int64_t ldw, float beta,
             const float* bias, float* y) {
#if defined(LOOM_X86_KERNELS)
  if (N <= 0 || K <= 0 || !has_avx512()) return false;
  // Equal halves of 8-row blocks, one per thread, in one parallel region: dynamic chunks of 64-256 rows measured
  // 3-14% slower (the threads share the memory bus, so equal halves finish together).
  const int64_t blocks = (N + 7) / 8;
#pragma omp parallel if (N * K >= (int64_t(1) << 16))
  {
    const auto [b0, b1] = thread_share(blocks);
    gemv_rows_avx512(std::min(N, 8 * b0), std::min(N, 8 * b1), K, alpha, x, W, ldw, beta, bias, y);
  }
  return true;
#else
  (void)N, (void)K, (void)alpha, (void)x, (void)W, (void)ldw, (void)beta, (void)bias, (void)y;
  return false;
#endif
}

void skinny_gemm_bt(int64_t M, int64_t N, int64_t K, float alpha, const float* A, int64_t lda, const float* W,
                    int64_t ldw, float beta, float* C, int64_t ldc) {
  if (M <= 0 || N <= 0) return;
  // Balanced groups (9 rows: 5 + 4, not 8 + 1, whose lone row would leave the FMA units waiting on 2 chains).
  const int64_t groups = (M + kMaxGroup - 1) / kMaxGroup, per = (M + groups - 1) / groups;
  auto store = [&](int64_t r0, int64_t rows, int64_t n, const float* s) {
    for (int64_t r = 0; r < rows; ++r) {
      float& c = C[(r0 + r) * ldc + n];
      c = beta == 0.0f ? alpha * s[r] : alpha * s[r] + beta * c;  // beta == 0 never reads C
    }
  };
  const int64_t pairs = (N + 1) / 2;
  const bool wide = has_avx512();
#pragma omp parallel for schedule(static) if (N * K >= (int64_t(1) << 18))
  for (int64_t p = 0; p < pairs; ++p) {
    const int64_t n = 2 * p;
    const float* w0 = W + n * ldw;
    const float* w1 = n + 1 < N ? w0 + ldw : w0;  // an odd last row is dotted twice, stored once
    // Prefetched during the first group only (later groups find them in cache); the last pair re-fetches itself.
    const float* next0 = n + 2 < N ? w0 + 2 * ldw : w0;
    const float* next1 = n + 3 < N ? w0 + 3 * ldw : next0;
    float s0[kMaxGroup], s1[kMaxGroup];
    for (int64_t r0 = 0; r0 < M; r0 += per) {
      const int64_t rows = std::min(per, M - r0);
      dot_group(wide, int(rows), K, A + r0 * lda, lda, w0, w1, r0 == 0 ? next0 : w0, r0 == 0 ? next1 : w1, s0, s1);
      store(r0, rows, n, s0);
      if (n + 1 < N) store(r0, rows, n + 1, s1);
    }
  }
}

}  // namespace loom::cpu
