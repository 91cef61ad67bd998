// The blocked AVX-512 sgemm of sgemm_avx512.h. The structure is Goto's / BLIS's:
//   for each KC-deep slice of K:   pack op(B)[slice, region columns] into NR-wide panels (k-major, zero-padded),
//                                   unless B is row-major and the columns fill whole panels (read in place)
//     for each MC-high block of rows:   pack alpha * op(A)[rows, slice] into MR-high panels (k-major, zero-padded),
//                                       except whole panels at alpha 1, which the kernel reads from A as stored
//       for each B panel (stays in L1), for each A panel (the block stays in L2): the MR x NR micro-kernel
// The micro-kernel holds an MR x 32 tile of C in 2 * MR zmm registers and per k does 2 loads of B and MR
// broadcasts of A for 2 * MR FMAs; with MR = 12 that is 24 accumulators, enough independent chains for two FMA
// pipes of latency 4. Packing puts transposes, strides and alpha in one place, so the kernel sees one layout
// (three for A: packed, or A or A^T as stored, whose broadcasts need no contiguous panel). An epilogue
// (sgemm_avx512.h) acts on the registers at the last K slice's store.
// Threads split C into one rectangle each (columns when there are enough, else rows) and pack their own
// panels: no barrier inside the product, at the price of each thread packing the shared operand's slice.
#include "loom/backend/cpu/sgemm_avx512.h"

#include <cblas.h>
#include <omp.h>

#include <algorithm>
#include <cstdlib>
#include <cstring>
#include <new>

#include "loom/backend/cpu/gelu_vec_avx512.h"
#include "loom/backend/cpu/isa.h"
#include "loom/backend/cpu/loop.h"
#include "loom/backend/cpu/transpose_avx512.h"
#include "loom/core/error.h"

#if defined(LOOM_X86_KERNELS)
#pragma GCC diagnostic ignored "-Wmaybe-uninitialized"  // GCC 12's AVX-512 headers (see qgemm.cpp)
#pragma GCC diagnostic ignored "-Wuninitialized"
#include <immintrin.h>
#endif

namespace loom::cpu {

#if defined(LOOM_X86_KERNELS)

namespace {

constexpr int64_t NR = 32;
constexpr int64_t KC = 256;  // B panel: 256 x 32 floats = 32 KB, in L1 while the A panels pass it
// A block: 8 A panels (96 x 256 floats = 96 KB for MR = 12), in L2.
template <int64_t MR>
constexpr int64_t MC = MR * 8;

// A grow-only, 64-byte aligned buffer per thread (OpenMP's threads persist, so their buffers are reused).
float* scratch(int which, int64_t floats) {
  struct Buf {
    float* p = nullptr;
    int64_t n = 0;
    ~Buf() { std::free(p); }
  };
  thread_local Buf bufs[2];
  Buf& b = bufs[which];
  if (b.n < floats) {
    std::free(b.p);
    b.n = (floats + 15) / 16 * 16;
    b.p = static_cast<float*>(std::aligned_alloc(64, size_t(b.n) * sizeof(float)));
    if (!b.p) {
      b.n = 0;
      throw std::bad_alloc();
    }
  }
  return b.p;
}

struct Operands {
  bool ta, tb;
  const float* A;
  int64_t lda;
  const float* B;
  int64_t ldb;
  float alpha, beta;
  float* C;
  int64_t ldc;
  const float* bias;  // null, or N values added to every row of C
  SgemmEpilogue ep;
};

// Rows r[0..8) (8 values of k each) stored k-major: dst[k * ld + i] = r[i][k] (an 8 x 8 transpose: unpack,
// shuffle, then 128-bit halves exchanged).
LOOM_TARGET_AVX512 inline void store_8x8_kmajor_avx512(const __m256* r, float* dst, int64_t ld) {
  const __m256 t0 = _mm256_unpacklo_ps(r[0], r[1]), t1 = _mm256_unpackhi_ps(r[0], r[1]);
  const __m256 t2 = _mm256_unpacklo_ps(r[2], r[3]), t3 = _mm256_unpackhi_ps(r[2], r[3]);
  const __m256 t4 = _mm256_unpacklo_ps(r[4], r[5]), t5 = _mm256_unpackhi_ps(r[4], r[5]);
  const __m256 t6 = _mm256_unpacklo_ps(r[6], r[7]), t7 = _mm256_unpackhi_ps(r[6], r[7]);
  const __m256 s[8] = {_mm256_shuffle_ps(t0, t2, 0x44), _mm256_shuffle_ps(t0, t2, 0xEE),
                       _mm256_shuffle_ps(t1, t3, 0x44), _mm256_shuffle_ps(t1, t3, 0xEE),
                       _mm256_shuffle_ps(t4, t6, 0x44), _mm256_shuffle_ps(t4, t6, 0xEE),
                       _mm256_shuffle_ps(t5, t7, 0x44), _mm256_shuffle_ps(t5, t7, 0xEE)};
  for (int c = 0; c < 4; ++c) {  // s[c]: rows 0-3 of k = c (low half) and c + 4 (high half); s[c + 4]: rows 4-7
    _mm256_storeu_ps(dst + c * ld, _mm256_permute2f128_ps(s[c], s[c + 4], 0x20));
    _mm256_storeu_ps(dst + (c + 4) * ld, _mm256_permute2f128_ps(s[c], s[c + 4], 0x31));
  }
}

// The same for 4 rows: dst[k * ld + i] = r[i][k], i < 4, k < 8.
LOOM_TARGET_AVX512 inline void store_4x8_kmajor_avx512(const __m256* r, float* dst, int64_t ld) {
  const __m256 t0 = _mm256_unpacklo_ps(r[0], r[1]), t1 = _mm256_unpackhi_ps(r[0], r[1]);
  const __m256 t2 = _mm256_unpacklo_ps(r[2], r[3]), t3 = _mm256_unpackhi_ps(r[2], r[3]);
  const __m256 s[4] = {_mm256_shuffle_ps(t0, t2, 0x44), _mm256_shuffle_ps(t0, t2, 0xEE),
                       _mm256_shuffle_ps(t1, t3, 0x44), _mm256_shuffle_ps(t1, t3, 0xEE)};
  for (int c = 0; c < 4; ++c) {
    _mm_storeu_ps(dst + c * ld, _mm256_castps256_ps128(s[c]));
    _mm_storeu_ps(dst + (c + 4) * ld, _mm256_extractf128_ps(s[c], 1));
  }
}

// alpha * op(A)[i0 .. i0 + mc, k0 .. k0 + kc) as MR-high panels, each k-major (MR values per k), rows past mc zero.
// A row-major A (the common case: activations times a weight) is read 8 values of k at a time from each row
// and transposed in registers: the scalar scatter it replaces cost a quarter of the products at N = 128.
template <int64_t MR>
LOOM_TARGET_AVX512 void pack_a_avx512(const Operands& o, int64_t i0, int64_t mc, int64_t k0, int64_t kc, float* ap) {
  const __m256 va = _mm256_set1_ps(o.alpha);
  if (o.ta) {
    // A stored (K, M): each k's row segment [i0, i0 + mc) is contiguous and is read once, whole, for all the
    // block's panels (a panel at a time would re-fetch every cache line of a large A^T from L3 twice).
    const int64_t full = mc / MR * MR;
    for (int64_t k = 0; k < kc; ++k) {
      const float* src = o.A + (k0 + k) * o.lda + i0;
      for (int64_t p = 0; p < full; p += MR) {
        float* dst = ap + p * kc + k * MR;
        _mm256_storeu_ps(dst, _mm256_mul_ps(va, _mm256_loadu_ps(src + p)));
        if constexpr (MR == 12) _mm_storeu_ps(dst + 8, _mm_mul_ps(_mm256_castps256_ps128(va), _mm_loadu_ps(src + p + 8)));
      }
      if (full < mc) {
        float* dst = ap + full * kc + k * MR;
        for (int64_t r = 0; r < MR; ++r) dst[r] = full + r < mc ? o.alpha * src[full + r] : 0.0f;
      }
    }
    return;
  }
  for (int64_t p = 0; p < mc; p += MR) {
    const int64_t rows = std::min(MR, mc - p);
    float* dst = ap + p * kc;
    {  // A (M, K): row i is contiguous in k
      int64_t k = 0;
      if (rows == MR) {
        const float* src = o.A + (i0 + p) * o.lda + k0;
        for (; k + 8 <= kc; k += 8) {
          __m256 r[8];
          for (int i = 0; i < 8; ++i) r[i] = _mm256_mul_ps(va, _mm256_loadu_ps(src + i * o.lda + k));
          store_8x8_kmajor_avx512(r, dst + k * MR, MR);
          if constexpr (MR == 12) {
            for (int i = 0; i < 4; ++i) r[i] = _mm256_mul_ps(va, _mm256_loadu_ps(src + (8 + i) * o.lda + k));
            store_4x8_kmajor_avx512(r, dst + k * MR + 8, MR);
          }
        }
      }
      for (int64_t r = 0; r < rows; ++r) {
        const float* src = o.A + (i0 + p + r) * o.lda + k0;
        for (int64_t kk = k; kk < kc; ++kk) dst[kk * MR + r] = o.alpha * src[kk];
      }
    }
    for (int64_t r = rows; r < MR; ++r)
      for (int64_t k = 0; k < kc; ++k) dst[k * MR + r] = 0.0f;
  }
}

// op(B)[k0 .. k0 + kc, j0 .. j0 + nc) as NR-wide panels, each k-major (NR values per k), columns past nc zero.
LOOM_TARGET_AVX512 void pack_b_avx512(const Operands& o, int64_t k0, int64_t kc, int64_t j0, int64_t nc, float* bp) {
  for (int64_t p = 0; p < nc; p += NR) {
    const int64_t cols = std::min(NR, nc - p);
    float* dst = bp + p * kc;
    if (!o.tb) {  // B (K, N): each k's NR values are contiguous
      const __mmask16 m0 = __mmask16(cols >= 16 ? 0xFFFF : (1u << cols) - 1u);
      const __mmask16 m1 = __mmask16(cols >= 32 ? 0xFFFF : cols <= 16 ? 0 : (1u << (cols - 16)) - 1u);
      for (int64_t k = 0; k < kc; ++k) {
        const float* src = o.B + (k0 + k) * o.ldb + j0 + p;
        _mm512_store_ps(dst + k * NR, _mm512_maskz_loadu_ps(m0, src));
        _mm512_store_ps(dst + k * NR + 16, _mm512_maskz_loadu_ps(m1, src + 16));
      }
    } else {  // B stored (N, K) (a Linear's weight): transpose 16 x 16 blocks into the panel
      int64_t k = 0;
      if (cols == NR)
        for (; k + 16 <= kc; k += 16)
          for (int64_t h = 0; h < NR; h += 16)
            transpose16_avx512(o.B + (j0 + p + h) * o.ldb + k0 + k, o.ldb, dst + k * NR + h, NR);
      for (; k < kc; ++k)
        for (int64_t j = 0; j < NR; ++j) dst[k * NR + j] = j < cols ? o.B[(j0 + p + j) * o.ldb + k0 + k] : 0.0f;
    }
  }
}

// The epilogue (sgemm_avx512.h) on 16 finished values v of C (lanes under m), aux at the same place: returns
// what C stores. In registers, before C's store: a pass over the stored tile afterwards stalled on every load (a
// masked store does not forward to the load that follows it on this CPU; 14% of a W3 step).
template <Epilogue E>
LOOM_TARGET_AVX512 inline __m512 epilogue_avx512(__m512 v, float* aux, __mmask16 m) {
  if constexpr (E == Epilogue::None) {
    (void)aux, (void)m;
    return v;
  } else if constexpr (E == Epilogue::Gelu || E == Epilogue::GeluTanh) {
    _mm512_mask_storeu_ps(aux, m, v);
    if constexpr (E == Epilogue::Gelu) {
      __m512 cdf, pdf;
      normal_cdf_pdf_avx512(v, cdf, pdf);
      return _mm512_mul_ps(v, cdf);
    } else {
      return _mm512_mul_ps(v, gelu_tanh_gate_avx512(v));
    }
  } else {
    const __m512 x = _mm512_maskz_loadu_ps(m, aux);
    if constexpr (E == Epilogue::GeluGrad) {
      __m512 cdf, pdf;
      normal_cdf_pdf_avx512(x, cdf, pdf);
      return _mm512_mul_ps(v, _mm512_fmadd_ps(x, pdf, cdf));
    } else {
      return _mm512_mul_ps(v, gelu_tanh_grad_avx512(x, gelu_tanh_gate_avx512(x)));
    }
  }
}

// C tile (rows x cols of an MR x NR tile at c, row stride ldc) = first ? beta * C + A B : C + A B, over kc steps
// of the packed panels; beta == 0 on the first slice stores without reading C. bias (first slice only; null
// for none) holds the tile's cols bias values, added to every row: the accumulators start from it, so a
// Linear's bias costs no pass over C. A partial tile (C's bottom or right edge) computes the whole tile from the
// zero-padded panels and stores only its rows, columns masked. E: the epilogue (K's last slice only; aux at the
// tile's place in the epilogue's matrix, row stride ldaux).
// How the kernel reads A: packed MR-high panels, or A as stored: rows of a row-major A (a(r, k) = a[r * lda + k])
// or rows of a stored A^T (a(r, k) = a[k * lda + r]).
enum class AForm { Packed, Rows, Cols };

template <int64_t MR, Epilogue E = Epilogue::None, AForm kA = AForm::Packed>
LOOM_TARGET_AVX512 __attribute__((target("prfchw"))) void kernel_avx512(int64_t kc, const float* ap, const float* bp, float* c, int64_t ldc,
                                      int64_t rows, int64_t cols, bool first, float beta, const float* bias,
                                      float* aux = nullptr, int64_t ldaux = 0, int64_t lda = 0, int64_t ldbp = NR) {
  const __mmask16 m0 = __mmask16(cols >= 16 ? 0xFFFF : (1u << cols) - 1u);
  const __mmask16 m1 = __mmask16(cols >= 32 ? 0xFFFF : cols <= 16 ? 0 : (1u << (cols - 16)) - 1u);
  const __m512 init0 = bias ? _mm512_maskz_loadu_ps(m0, bias) : _mm512_setzero_ps();
  const __m512 init1 = bias ? _mm512_maskz_loadu_ps(m1, bias + 16) : _mm512_setzero_ps();
  if constexpr (E != Epilogue::None) {
    // The epilogue's aux rows are read (or written) at the end: fetched now, they arrive while the K loop runs.
#pragma GCC unroll 12
    for (int r = 0; r < MR; ++r) {
      if (r >= rows) break;
      constexpr int kWrite = E == Epilogue::Gelu || E == Epilogue::GeluTanh;  // forward writes aux: fetch to own
      __builtin_prefetch(aux + r * ldaux, kWrite, 3);
      __builtin_prefetch(aux + r * ldaux + 16, kWrite, 3);
    }
  }
  __m512 acc[MR][2];
#pragma GCC unroll 12
  for (int r = 0; r < MR; ++r) {
    acc[r][0] = init0;
    acc[r][1] = init1;
  }
  for (int64_t k = 0; k < kc; ++k) {
    const __m512 b0 = _mm512_loadu_ps(bp), b1 = _mm512_loadu_ps(bp + 16);
#pragma GCC unroll 12
    for (int r = 0; r < MR; ++r) {
      const __m512 a = _mm512_set1_ps(kA == AForm::Rows ? ap[r * lda] : ap[r]);
      acc[r][0] = _mm512_fmadd_ps(a, b0, acc[r][0]);
      acc[r][1] = _mm512_fmadd_ps(a, b1, acc[r][1]);
    }
    ap += kA == AForm::Rows ? 1 : kA == AForm::Cols ? lda : MR;
    bp += ldbp;
  }
  if (first && beta == 0.0f) {
#pragma GCC unroll 12
    for (int r = 0; r < MR; ++r) {
      if (r >= rows) break;
      _mm512_mask_storeu_ps(c + r * ldc, m0, epilogue_avx512<E>(acc[r][0], aux + r * ldaux, m0));
      _mm512_mask_storeu_ps(c + r * ldc + 16, m1, epilogue_avx512<E>(acc[r][1], aux + r * ldaux + 16, m1));
    }
  } else {
    const __m512 vb = _mm512_set1_ps(first ? beta : 1.0f);
#pragma GCC unroll 12
    for (int r = 0; r < MR; ++r) {
      if (r >= rows) break;
      float* cr = c + r * ldc;
      const __m512 v0 = _mm512_fmadd_ps(vb, _mm512_maskz_loadu_ps(m0, cr), acc[r][0]);
      const __m512 v1 = _mm512_fmadd_ps(vb, _mm512_maskz_loadu_ps(m1, cr + 16), acc[r][1]);
      _mm512_mask_storeu_ps(cr, m0, epilogue_avx512<E>(v0, aux + r * ldaux, m0));
      _mm512_mask_storeu_ps(cr + 16, m1, epilogue_avx512<E>(v1, aux + r * ldaux + 16, m1));
    }
  }
}

// One thread's rectangle of C: rows [i0, i1), columns [j0, j1), all of K.
template <int64_t MR, Epilogue E>
LOOM_TARGET_AVX512 void region_avx512(const Operands& o, int64_t K, int64_t i0, int64_t i1, int64_t j0, int64_t j1) {
  const int64_t n = j1 - j0;
  const int64_t n_pad = (n + NR - 1) / NR * NR;
  float* bp = scratch(0, KC * n_pad);
  float* ap = scratch(1, KC * MC<MR>);
  for (int64_t k0 = 0; k0 < K; k0 += KC) {
    const int64_t kc = std::min(KC, K - k0);
    const bool first = k0 == 0, last = k0 + kc >= K;
    // A row-major B in whole NR-wide panels is read in place too, a panel's rows ldb apart (W3 ~1% faster than
    // copying it into panels; a B^T still needs its transposes).
    const bool direct_b = !o.tb && n % NR == 0;
    if (!direct_b) pack_b_avx512(o, k0, kc, j0, n, bp);
    const int64_t ldbp = direct_b ? o.ldb : NR;
    for (int64_t ib = i0; ib < i1; ib += MC<MR>) {
      const int64_t mc = std::min(MC<MR>, i1 - ib);
      // A at alpha 1 in whole MR-row panels: the kernel broadcasts from A as stored, a row-major A's rows or a
      // stored A^T's (a weight gradient's dY^T). Packing them first read every activation once more (A panels were
      // 6% of a W3 step; W3 1.5-2% faster without; W3's weight-gradient products 366-414 -> 411-441 GFLOP/s).
      const bool direct = o.alpha == 1.0f && mc % MR == 0;
      if (!direct) pack_a_avx512<MR>(o, ib, mc, k0, kc, ap);
      for (int64_t jp = 0; jp < n; jp += NR) {
        const int64_t cols = std::min(NR, n - jp);
        const float* b = direct_b ? o.B + k0 * o.ldb + j0 + jp : bp + jp * kc;
        for (int64_t ip = 0; ip < mc; ip += MR) {
          float* c = o.C + (ib + ip) * o.ldc + j0 + jp;
          const float* bias = first && o.bias ? o.bias + j0 + jp : nullptr;
          const float* a = !direct ? ap + ip * kc : o.ta ? o.A + k0 * o.lda + ib + ip : o.A + (ib + ip) * o.lda + k0;
          float* aux = E != Epilogue::None && last ? o.ep.aux + (ib + ip) * o.ep.ldaux + j0 + jp : nullptr;
          const int64_t rows = std::min(MR, mc - ip);
          // The kernel for this tile's epilogue (K's last slice only) and A's form.
          const auto run = [&]<Epilogue EE>() {
            const int64_t ldaux = EE == Epilogue::None ? 0 : o.ep.ldaux;
            if (direct && o.ta)
              kernel_avx512<MR, EE, AForm::Cols>(kc, a, b, c, o.ldc, rows, cols, first, o.beta, bias, aux, ldaux, o.lda, ldbp);
            else if (direct)
              kernel_avx512<MR, EE, AForm::Rows>(kc, a, b, c, o.ldc, rows, cols, first, o.beta, bias, aux, ldaux, o.lda, ldbp);
            else kernel_avx512<MR, EE>(kc, a, b, c, o.ldc, rows, cols, first, o.beta, bias, aux, ldaux, 0, ldbp);
          };
          if (E != Epilogue::None && last) run.template operator()<E>();
          else run.template operator()<Epilogue::None>();
        }
      }
    }
  }
}

// All of C split into one rectangle per thread, in whole NR-wide column panels or MR-high row panels. Each
// thread packs its own operands, so a column split has every thread pack all of A (M x K) and a row split all
// of B (K x N): split so that the smaller one is the duplicate (rows when M > N), as long as that split has two
// panels per thread to balance; else the split with more panels. (Columns whenever there were 2 panels per
// thread made W3's 2048-row products with N = 128 pack their 2048 x 128 A in both threads: its packing grew from
// 3% to 7% of a 2-thread step.)
template <int64_t MR, Epilogue E>
void product(const Operands& o, int64_t M, int64_t N, int64_t K) {
  const int threads =
      omp_in_parallel() || double(M) * double(N) * double(K) < double(1 << 17) ? 1 : omp_get_max_threads();
  if (threads == 1) return region_avx512<MR, E>(o, K, 0, M, 0, N);
  const int64_t col_panels = (N + NR - 1) / NR, row_panels = (M + MR - 1) / MR;
  const bool cols_first = N >= M;
  const int64_t preferred = cols_first ? col_panels : row_panels, other = cols_first ? row_panels : col_panels;
  const bool by_cols = preferred >= 2 * threads || preferred >= other ? cols_first : !cols_first;
  const int64_t panels = by_cols ? col_panels : row_panels, width = by_cols ? NR : MR, extent = by_cols ? N : M;
  const int parts = int(std::min<int64_t>(threads, panels));
#pragma omp parallel num_threads(parts)
  {
    const auto [p0, p1] = thread_share(panels);
    const int64_t lo = std::min(extent, p0 * width), hi = std::min(extent, p1 * width);
    if (lo < hi) {
      if (by_cols) region_avx512<MR, E>(o, K, 0, M, lo, hi);
      else region_avx512<MR, E>(o, K, lo, hi, 0, N);
    }
  }
}

// The epilogue over all of C in place (the degenerate products, K = 0 or alpha = 0, that run no kernel).
template <Epilogue E>
LOOM_TARGET_AVX512 void epilogue_rows_avx512(const SgemmEpilogue& ep, float* C, int64_t ldc, int64_t M, int64_t N) {
  for (int64_t i = 0; i < M; ++i)
    for (int64_t j = 0; j < N; j += 16) {
      const __mmask16 m = N - j >= 16 ? __mmask16(0xFFFF) : __mmask16((1u << (N - j)) - 1u);
      float* c = C + i * ldc + j;
      _mm512_mask_storeu_ps(c, m, epilogue_avx512<E>(_mm512_maskz_loadu_ps(m, c), ep.aux + i * ep.ldaux + j, m));
    }
}

// f.template operator()<E>() for the run-time kind: one switch for every place that instantiates per epilogue.
template <class F>
void with_epilogue(Epilogue kind, F&& f) {
  switch (kind) {
    case Epilogue::None: return f.template operator()<Epilogue::None>();
    case Epilogue::Gelu: return f.template operator()<Epilogue::Gelu>();
    case Epilogue::GeluTanh: return f.template operator()<Epilogue::GeluTanh>();
    case Epilogue::GeluGrad: return f.template operator()<Epilogue::GeluGrad>();
    case Epilogue::GeluTanhGrad: return f.template operator()<Epilogue::GeluTanhGrad>();
  }
}

}  // namespace

bool sgemm_avx512_available() { return has_avx512(); }

void sgemm(bool ta, bool tb, int64_t M, int64_t N, int64_t K, float alpha, const float* A, int64_t lda,
           const float* B, int64_t ldb, float beta, float* C, int64_t ldc, const float* bias,
           const SgemmEpilogue& epilogue) {
  LOOM_CHECK(sgemm_avx512_available(), "cpu::sgemm: this CPU has no AVX-512 (or LOOM_ISA=baseline)");
  LOOM_CHECK(epilogue.kind == Epilogue::None || epilogue.aux, "cpu::sgemm: an epilogue needs its aux matrix");
  if (M <= 0 || N <= 0) return;
  if (K <= 0 || alpha == 0.0f) {  // C = beta * C + bias (beta == 0 writes without reading)
    for (int64_t i = 0; i < M; ++i)
      for (int64_t j = 0; j < N; ++j)
        C[i * ldc + j] = (beta == 0.0f ? 0.0f : beta * C[i * ldc + j]) + (bias ? bias[j] : 0.0f);
    if (epilogue.kind != Epilogue::None)
      with_epilogue(epilogue.kind, [&]<Epilogue E>() { epilogue_rows_avx512<E>(epilogue, C, ldc, M, N); });
    return;
  }
  const Operands o{ta, tb, A, lda, B, ldb, alpha, beta, C, ldc, bias, epilogue};
  // 12-high tiles (24 accumulators) unless 8-high ones waste fewer padded rows (M = 64: 8 x 8 against 6 x 12 = 72).
  const bool eight = (M + 7) / 8 * 8 < (M + 11) / 12 * 12;
  with_epilogue(epilogue.kind, [&]<Epilogue E>() { eight ? product<8, E>(o, M, N, K) : product<12, E>(o, M, N, K); });
}

#else

bool sgemm_avx512_available() { return false; }
void sgemm(bool, bool, int64_t, int64_t, int64_t, float, const float*, int64_t, const float*, int64_t, float, float*,
           int64_t, const float*, const SgemmEpilogue&) {
  LOOM_FAIL("cpu::sgemm: this build has no AVX-512 kernels (not x86-64)");
}

#endif

void sgemm_or_blas(bool ta, bool tb, int64_t M, int64_t N, int64_t K, float alpha, const float* A, int64_t lda,
                   const float* B, int64_t ldb, float beta, float* C, int64_t ldc) {
  if (sgemm_avx512_available()) return sgemm(ta, tb, M, N, K, alpha, A, lda, B, ldb, beta, C, ldc);
  cblas_sgemm(CblasRowMajor, ta ? CblasTrans : CblasNoTrans, tb ? CblasTrans : CblasNoTrans, int(M), int(N), int(K),
              alpha, A, int(lda), B, int(ldb), beta, C, int(ldc));
}

}  // namespace loom::cpu
