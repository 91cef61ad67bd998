// bf16 GEMM kernels (see gemm_bf16.h). The AMX path packs both operands to bf16 once per call (A row-major
// in K chunks of <= 1024, B in the pair-interleaved layout TDPBF16PS reads), then each 32x32 block of C is
// four 16x16 f32 tile accumulators fed by two A tiles and two B tiles per 32-deep step. B is walked in
// column panels of about 512 KB so a panel stays in L2 while every row block of A passes over it; threads
// split (panel, row block) work items in panel order. The packing (O(MK + KN)) is the only extra cost over
// the products, and it dominates at small K or when A must be transposed (then C^T is computed instead
// when that transposes the smaller operand).
#include "loom/backend/cpu/gemm_bf16.h"
#include "loom/backend/cpu/gemm_bf16_avx512.h"
#include "loom/backend/cpu/isa.h"
#include "loom/backend/cpu/loop.h"
#include "loom/backend/cpu/sgemm_avx512.h"

#include <immintrin.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <algorithm>
#include <cpuid.h>
#include <cstdlib>
#include <cstring>
#include <string>
#include <vector>

#include "loom/core/dtype.h"
#include "loom/core/error.h"

namespace loom::cpu {

uint16_t to_bf16_bits(float f) { return bf16(f).bits; }
float round_to_bf16(float f) { return float(bf16(f)); }

namespace {

// Inline twin of loom::bf16's rounding for the packing loops (branch-free so they vectorise); the tests
// check it against loom::bf16 bit for bit, NaN included.
inline uint16_t bf16_bits(float f) {
  uint32_t u;
  std::memcpy(&u, &f, 4);
  const uint32_t rounded = (u + 0x7fffu + ((u >> 16) & 1u)) >> 16;
  const uint32_t nan = (u >> 16) | 0x40u;
  return uint16_t((u & 0x7fffffffu) > 0x7f800000u ? nan : rounded);
}
inline float bf16_value(float f) {
  const uint32_t u = uint32_t(bf16_bits(f)) << 16;
  float r;
  std::memcpy(&r, &u, 4);
  return r;
}

inline int64_t round_up(int64_t v, int64_t m) { return (v + m - 1) / m * m; }

// ---- AMX availability: CPUID leaf 7 (EDX bit 22 amx_bf16, bit 24 amx_tile), then ask Linux for the tile
// data state (ARCH_REQ_XCOMP_PERM, XFEATURE_XTILEDATA = 18); without it the first tile instruction faults.
bool detect_amx() {
#if defined(__x86_64__) && defined(__linux__)
  unsigned a, b, c, d;
  if (!__get_cpuid_count(7, 0, &a, &b, &c, &d)) return false;
  if (!(d & (1u << 22)) || !(d & (1u << 24))) return false;
  constexpr long kArchReqXcompPerm = 0x1023, kXfeatureXtiledata = 18;
  return syscall(SYS_arch_prctl, kArchReqXcompPerm, kXfeatureXtiledata) == 0;
#else
  return false;
#endif
}

// ---- Convert kernel: bf16-valued f32 copies (contiguous, same orientation) and sgemm.
void gemm_convert(bool ta, bool tb, int64_t M, int64_t N, int64_t K, float alpha, const float* A, int64_t lda,
                  const float* B, int64_t ldb, float beta, float* C, int64_t ldc) {
  const int64_t ar = ta ? K : M, ac = ta ? M : K, br = tb ? N : K, bc = tb ? K : N;
  std::vector<float> a(size_t(ar * ac)), b(size_t(br * bc));
#pragma omp parallel for schedule(static) if (ar * ac > 65536)
  for (int64_t i = 0; i < ar; ++i)
    for (int64_t j = 0; j < ac; ++j) a[size_t(i * ac + j)] = bf16_value(A[i * lda + j]);
#pragma omp parallel for schedule(static) if (br * bc > 65536)
  for (int64_t i = 0; i < br; ++i)
    for (int64_t j = 0; j < bc; ++j) b[size_t(i * bc + j)] = bf16_value(B[i * ldb + j]);
  sgemm_or_blas(ta, tb, M, N, K, alpha, a.data(), std::max<int64_t>(ac, 1), b.data(), std::max<int64_t>(bc, 1), beta, C,
                ldc);
}

// ---- AMX kernel
struct alignas(64) TileConfig {
  uint8_t palette = 1, start_row = 0;
  uint8_t reserved[14] = {};
  uint16_t colsb[16] = {};
  uint8_t rows[16] = {};
};

// Tiles 0-3: C accumulators (C00, C01, C10, C11); 4-5: A rows 0-15 / 16-31; 6-7: B cols 0-15 / 16-31.
// Ap points at the packed A chunk holding columns [k_lo, k_hi), rows a_ld elements apart.
__attribute__((target("amx-tile,amx-bf16"))) void amx_block_range(const uint16_t* Ap, int64_t a_ld, const uint16_t* Bp, int64_t Kp,
                                                                    int64_t k_lo, int64_t k_hi,
                                                                    int64_t M, int64_t N, int64_t panel, int64_t item_begin,
                                                                    int64_t item_end, int64_t mblocks, float alpha,
                                                                    float beta, float* C, int64_t ldc, bool trans_c) {
  TileConfig cfg;
  for (int t = 0; t < 8; ++t) { cfg.colsb[t] = 64; cfg.rows[t] = 16; }
  _tile_loadconfig(&cfg);
  alignas(64) float tmp[32 * 32];
  const int64_t bstride = Kp / 2 * 32;  // elements per 16-column block of packed B
  for (int64_t item = item_begin; item < item_end; ++item) {
    const int64_t p = item / mblocks, mb = item % mblocks;
    const int64_t m0 = mb * 32, n_lo = p * panel, n_hi = std::min(round_up(N, 32), n_lo + panel);
    const uint16_t* a0 = Ap + m0 * a_ld - k_lo;
    const uint16_t* a1 = a0 + 16 * a_ld;
    for (int64_t n0 = n_lo; n0 < n_hi; n0 += 32) {
      const uint16_t* b0 = Bp + (n0 / 16) * bstride;
      const uint16_t* b1 = b0 + bstride;
      _tile_zero(0);
      _tile_zero(1);
      _tile_zero(2);
      _tile_zero(3);
      for (int64_t k = k_lo; k < k_hi; k += 32) {
        _tile_loadd(4, a0 + k, a_ld * 2);
        _tile_loadd(5, a1 + k, a_ld * 2);
        _tile_loadd(6, b0 + k * 16, 64);
        _tile_loadd(7, b1 + k * 16, 64);
        _tile_dpbf16ps(0, 4, 6);
        _tile_dpbf16ps(1, 4, 7);
        _tile_dpbf16ps(2, 5, 6);
        _tile_dpbf16ps(3, 5, 7);
      }
      _tile_stored(0, tmp, 128);
      _tile_stored(1, tmp + 16, 128);
      _tile_stored(2, tmp + 16 * 32, 128);
      _tile_stored(3, tmp + 16 * 32 + 16, 128);
      const int64_t mr = std::min<int64_t>(32, M - m0), nr = std::min<int64_t>(32, N - n0);
      if (trans_c) {  // this call computes C^T: block element (i, j) belongs at C[n0 + j][m0 + i]
        for (int64_t j = 0; j < nr; ++j) {
          float* c = C + (n0 + j) * ldc + m0;
          for (int64_t i = 0; i < mr; ++i) c[i] = alpha * tmp[i * 32 + j] + (beta == 0.0f ? 0.0f : beta * c[i]);
        }
        continue;
      }
      for (int64_t i = 0; i < mr; ++i) {
        float* c = C + (m0 + i) * ldc + n0;
        const float* t = tmp + i * 32;
        if (beta == 0.0f) {
#pragma omp simd
          for (int64_t j = 0; j < nr; ++j) c[j] = alpha * t[j];
        } else {
#pragma omp simd
          for (int64_t j = 0; j < nr; ++j) c[j] = alpha * t[j] + beta * c[j];
        }
      }
    }
  }
  _tile_release();
}

void gemm_amx(bool ta, bool tb, int64_t M, int64_t N, int64_t K, float alpha, const float* A, int64_t lda,
              const float* B, int64_t ldb, float beta, float* C, int64_t ldc, bool trans_c = false) {
  // A^T B (a weight gradient dY^T X) transposes A (K x M) while packing, the costly part. When N < M, compute
  // C^T = B^T A instead: the same packing path, on the smaller operand, and a transposed store of C.
  if (ta && !tb && N < M && !trans_c) return gemm_amx(true, false, N, M, K, alpha, B, ldb, A, lda, beta, C, ldc, true);
  const int64_t Mp = round_up(M, 32), Np = round_up(N, 32), Kp = round_up(K, 32);
  // K in chunks of at most kKc (a 32-row block of A stays in L1/L2, and a 256-column panel of B in L2). A is
  // packed chunk by chunk (Mp x Kc each), so a tile's rows are Kc apart rather than Kp: with K = 50257 rows
  // 100 KB apart cost a TLB miss per row.
  constexpr int64_t kKc = 1024;
  const int64_t chunks = (Kp + kKc - 1) / kKc, Kc = round_up((Kp + chunks - 1) / chunks, 32);
  auto a_at = [&](int64_t m, int64_t k) { return ((k / Kc) * Mp + m) * Kc + k % Kc; };
  // Reused per thread across calls: a training step repeats the same shapes.
  thread_local std::vector<uint16_t> abuf, bbuf;
  abuf.assign(size_t(chunks * Mp * Kc), 0);
  bbuf.assign(size_t(Np * Kp), 0);
  uint16_t* Ap = abuf.data();
  uint16_t* Bp = bbuf.data();
  // A: per K chunk, Mp x Kc row-major bf16 (padding stays zero).
  if (!ta) {
#pragma omp parallel for schedule(static) if (M * K > 65536)
    for (int64_t m = 0; m < M; ++m)
      for (int64_t c0 = 0; c0 < K; c0 += Kc) {
        uint16_t* dst = Ap + a_at(m, c0);
        const float* src = A + m * lda + c0;
        const int64_t n = std::min(Kc, K - c0);
        for (int64_t k = 0; k < n; ++k) dst[k] = bf16_bits(src[k]);
      }
  } else {
    // A is stored K x M. Transposed through a 16 x 16 block in L1: writing Ap's rows one element at a time
    // (stride Kp, often a multiple of 4 KB) thrashed one L1 set and made packing 4x slower than the products.
    // Rows of A convert as contiguous runs into `rows` (vectorised), then a scalar 16 x 32 transpose in L1
    // writes whole 64-byte lines of Ap.
    // Blocks of 32 rows of A (k) outermost, so A streams through memory in order.
#pragma omp parallel for schedule(static) if (M * K > 65536)
    for (int64_t k0 = 0; k0 < K; k0 += 32) {
      const int64_t kn = std::min<int64_t>(32, K - k0);
      uint16_t rows[32][16] = {}, blk[16][32];
      for (int64_t m0 = 0; m0 < M; m0 += 16) {
        const int64_t mn = std::min<int64_t>(16, M - m0);
        for (int64_t k = 0; k < kn; ++k) {
          const float* src = A + (k0 + k) * lda + m0;
          if (mn == 16) {
            for (int64_t m = 0; m < 16; ++m) rows[k][m] = bf16_bits(src[m]);
          } else {
            for (int64_t m = 0; m < mn; ++m) rows[k][m] = bf16_bits(src[m]);
          }
        }
        // Fixed 16 x 32 bounds (rows past kn hold stale values that land in Ap's padding or are not copied)
        // let GCC unroll this into register shuffles.
        for (int m = 0; m < 16; ++m)
          for (int k = 0; k < 32; ++k) blk[m][k] = rows[k][m];
        for (int64_t m = 0; m < mn; ++m) std::memcpy(Ap + a_at(m0 + m, k0), blk[m], size_t(kn) * 2);
      }
    }
  }
  // B: per 16-column block, Kp/2 rows of 16 (k, k+1) pairs: element (k, n) at
  // (n / 16) * (Kp / 2 * 32) + (k / 2) * 32 + (n % 16) * 2 + k % 2. Each block is written front to back.
  const int64_t bstride = Kp / 2 * 32;
  auto b_at = [&](int64_t k, int64_t n) { return B[k * ldb + n]; };
#pragma omp parallel for schedule(static) if (N * K > 65536)
  for (int64_t n0 = 0; n0 < N; n0 += 16) {
    uint16_t* blk = Bp + (n0 / 16) * bstride;
    const int64_t nn = std::min<int64_t>(16, N - n0);
    for (int64_t k = 0; k < K; k += 2) {
      uint16_t* row = blk + (k / 2) * 32;
      if (tb) break;  // below: B^T's (k, k+1) pairs are adjacent in memory
      if (nn == 16 && k + 1 < K) {
        const float* r0 = B + k * ldb + n0;
        const float* r1 = r0 + ldb;
        for (int64_t j = 0; j < 16; ++j) {
          row[2 * j] = bf16_bits(r0[j]);
          row[2 * j + 1] = bf16_bits(r1[j]);
        }
      } else {
        for (int64_t j = 0; j < nn; ++j) {
          row[2 * j] = bf16_bits(b_at(k, n0 + j));
          if (k + 1 < K) row[2 * j + 1] = bf16_bits(b_at(k + 1, n0 + j));
        }
      }
    }
    if (tb) {
      // B is N x K: row n's elements 2p and 2p+1 are already pair p of column n. Each of the block's 16 rows
      // converts as a contiguous run (vectorised), then the 32-bit pairs are copied 16 at a time into the
      // block's packed rows (a 16 x K/2 transpose of 32-bit elements).
      constexpr int64_t kKb = 1024;
      alignas(64) uint16_t t16[16][kKb + 2];
      for (int64_t kb = 0; kb < K; kb += kKb) {
        const int64_t kn = std::min(kKb, K - kb), pn = (kn + 1) / 2;
        for (int64_t j = 0; j < nn; ++j) {
          const float* src = B + (n0 + j) * ldb + kb;
          for (int64_t k = 0; k < kn; ++k) t16[j][k] = bf16_bits(src[k]);
          t16[j][kn] = 0;  // the odd K's last pair
        }
        for (int64_t p = 0; p < pn; ++p) {
          uint16_t* row = blk + (kb / 2 + p) * 32;
          for (int64_t j = 0; j < nn; ++j) std::memcpy(row + 2 * j, &t16[j][2 * p], 4);
        }
      }
    }
  }
  // Column panels of ~512 KB of packed B, a multiple of 32 wide. Later K chunks add onto C (beta = 1); each
  // thread owns the same C blocks in every chunk, so no barrier is needed between chunks.
  const int64_t panel = std::min(Np, std::max<int64_t>(32, (262144 / Kc) / 32 * 32));
  const int64_t panels = (Np + panel - 1) / panel, mblocks = Mp / 32, items = panels * mblocks;
#pragma omp parallel if (items > 1 && 2.0 * double(M) * double(N) * double(K) > 4e6)
  {
    const auto [b, e] = thread_share(items);
    if (b < e)
      for (int64_t k0 = 0; k0 < Kp; k0 += Kc)
        amx_block_range(Ap + (k0 / Kc) * Mp * Kc, Kc, Bp, Kp, k0, std::min(Kp, k0 + Kc), M, N, panel, b, e, mblocks, alpha, k0 == 0 ? beta : 1.0f,
                        C, ldc, trans_c);
  }
}

Bf16Kernel choose_kernel() {
  const char* env = std::getenv("LOOM_BF16_KERNEL");
  if (env && std::string(env) == "convert") return Bf16Kernel::Convert;
  if (amx_bf16_available()) return Bf16Kernel::Amx;
  return has_avx512_bf16() ? Bf16Kernel::Avx512 : Bf16Kernel::Convert;
}

}  // namespace

bool amx_bf16_available() {
  static const bool ok = detect_amx();
  return ok;
}

Bf16Kernel bf16_kernel() {
  static const Bf16Kernel k = choose_kernel();
  return k;
}

const char* bf16_kernel_name(Bf16Kernel k) {
  return k == Bf16Kernel::Amx ? "amx" : k == Bf16Kernel::Avx512 ? "avx512_bf16" : "convert+sgemm";
}

void gemm_bf16(Bf16Kernel kernel, bool ta, bool tb, int64_t M, int64_t N, int64_t K, float alpha, const float* A,
               int64_t lda, const float* B, int64_t ldb, float beta, float* C, int64_t ldc) {
  if (M <= 0 || N <= 0) return;
  if (K <= 0) {  // empty sum: C = beta * C
    for (int64_t i = 0; i < M; ++i)
      for (int64_t j = 0; j < N; ++j) C[i * ldc + j] = beta == 0.0f ? 0.0f : beta * C[i * ldc + j];
    return;
  }
  if (kernel == Bf16Kernel::Amx) {
    LOOM_CHECK(amx_bf16_available(), "gemm_bf16: the AMX kernel needs a CPU with amx_bf16 and Linux's permission for "
               "tile data; use Bf16Kernel::Convert (or bf16_kernel()) on this machine");
    gemm_amx(ta, tb, M, N, K, alpha, A, lda, B, ldb, beta, C, ldc);
  } else if (kernel == Bf16Kernel::Avx512) {
    LOOM_CHECK(has_avx512_bf16(), "gemm_bf16: the AVX512-BF16 kernel needs a CPU with avx512bf16 (",
               has_avx512() ? "CPU lacks avx512bf16" : isa_reason(false),
               "); use Bf16Kernel::Convert (or bf16_kernel()) on this machine");
    gemm_avx512bf16(ta, tb, M, N, K, alpha, A, lda, B, ldb, beta, C, ldc);
  } else {
    gemm_convert(ta, tb, M, N, K, alpha, A, lda, B, ldb, beta, C, ldc);
  }
}

void gemm_bf16(bool ta, bool tb, int64_t M, int64_t N, int64_t K, float alpha, const float* A, int64_t lda,
               const float* B, int64_t ldb, float beta, float* C, int64_t ldc) {
  gemm_bf16(bf16_kernel(), ta, tb, M, N, K, alpha, A, lda, B, ldb, beta, C, ldc);
}

namespace ref {
void gemm_bf16(bool ta, bool tb, int64_t M, int64_t N, int64_t K, float alpha, const float* A, int64_t lda,
               const float* B, int64_t ldb, float beta, float* C, int64_t ldc) {
  for (int64_t i = 0; i < M; ++i)
    for (int64_t j = 0; j < N; ++j) {
      double acc = 0;
      for (int64_t k = 0; k < K; ++k)
        acc += double(round_to_bf16(ta ? A[k * lda + i] : A[i * lda + k])) *
               double(round_to_bf16(tb ? B[j * ldb + k] : B[k * ldb + j]));
      float& c = C[i * ldc + j];
      c = float(alpha * acc + (beta == 0.0f ? 0.0 : double(beta) * c));
    }
}
}  // namespace ref

}  // namespace loom::cpu
