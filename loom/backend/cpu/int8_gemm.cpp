// The dynamic int8 GEMM. Activations are quantized and packed per call into panels of 64 rows: for each group of
// four k, the 64 rows' four u8 values side by side (256 bytes, four zmm). A micro tile of up to 6 weight rows x 64
// activation rows keeps 24 int32 accumulators; each step broadcasts four int8 weights of one row (the signed
// operand of vpdpbusd) against a zmm of 16 rows x 4 u8 activations (the unsigned one). K is padded to a multiple
// of four with zero weights. The zero point comes out afterwards as zp * sum_k q[n, k] (precomputed row sums), so
// the inner loop is the bare product. Output rows of a tile are contiguous in the activation index, which is the
// layout a convolution wants (out[oc, position]); a Linear's (m, n) output is written element by element. Under 8
// activation rows a row-by-row kernel runs instead (no panel padding). The VNNI functions carry
// LOOM_TARGET_AVX512_VNNI and run where cpu::has_avx512_vnni() says so (isa.h); elsewhere int8_gemm_ref does.
#include "loom/backend/cpu/int8_gemm.h"

#pragma GCC diagnostic ignored "-Wmaybe-uninitialized"
#include <immintrin.h>

#include <algorithm>
#include <cfloat>
#include <cmath>
#include <cstring>
#include <vector>

#include "loom/backend/cpu/isa.h"
#include "loom/core/error.h"

namespace loom::quant {


void quantize_int8_row(const float* w, int8_t* q, float* scale, int64_t K) {
  float lo = 0, hi = 0;  // the observer's min/max, widened to hold 0
  for (int64_t k = 0; k < K; ++k) {
    lo = std::min(lo, w[k]);
    hi = std::max(hi, w[k]);
  }
  // (quant_max - quant_min) / 2 = 255 / 2 for qint8; clamped below by float32's eps, as torch does.
  const float s = std::max(std::max(-lo, hi) / 127.5f, FLT_EPSILON);
  const float inv = 1.0f / s;
  for (int64_t k = 0; k < K; ++k) {
    const float v = std::nearbyint(w[k] * inv);
    q[k] = int8_t(std::clamp(v, -128.0f, 127.0f));
  }
  *scale = s;
}

Int8Params choose_int8_params(float min, float max) {
  LOOM_CHECK(min <= max, "int8 activation range: min ", min, " > max ", max, " (NaN in the input?)");
  const int32_t qmin = 0, qmax = 255 / 2;  // quint8 with reduce_range: fbgemm keeps u8 x s8 pair sums in int16
  min = std::min(min, 0.0f);
  max = std::max(max, 0.0f);
  double scale = (double(max) - min) / (qmax - qmin);
  if (float(scale) == 0.0f || std::isinf(1.0f / float(scale))) scale = 0.1;
  constexpr float kSmallScale = 6.1e-5f;
  if (scale < kSmallScale) {
    const float org_scale = float(scale);
    scale = kSmallScale;
    if (min == 0.0f) {
      max = kSmallScale * (qmax - qmin);
    } else if (max == 0.0f) {
      min = -kSmallScale * (qmax - qmin);
    } else {
      const float amplifier = kSmallScale / org_scale;
      min *= amplifier;
      max *= amplifier;
    }
  }
  const double zp_from_min = qmin - min / scale, zp_from_max = qmax - max / scale;
  const double err_min = std::abs(double(qmin)) - std::abs(min / scale);
  const double err_max = std::abs(double(qmax)) - std::abs(max / scale);
  const double zp = err_min < err_max ? zp_from_min : zp_from_max;
  Int8Params p;
  p.scale = float(scale);
  p.zero_point = zp < qmin ? qmin : zp > qmax ? qmax : int32_t(std::nearbyint(zp));
  return p;
}

uint8_t quantize_u8(float x, float inv_scale, float zero_point) {
  float v = std::fma(x, inv_scale, zero_point);
  v = v > 0.0f ? v : 0.0f;  // NaN -> 0
  v = v < 255.0f ? v : 255.0f;
  return uint8_t(std::nearbyint(v));
}

void int8_gemm_ref(StridedF32 y, ConstStridedF32 x, int64_t M, int64_t K, Int8Params xp, const Int8Weights& w) {
  const float inv = 1.0f / xp.scale, zpf = float(xp.zero_point);
  std::vector<int32_t> xq(size_t(std::max<int64_t>(K, 1)));
  for (int64_t m = 0; m < M; ++m) {
    for (int64_t k = 0; k < K; ++k) xq[k] = quantize_u8(x.p[m * x.s0 + k * x.s1], inv, zpf);
    for (int64_t n = 0; n < w.N; ++n) {
      const int8_t* q = w.q + n * K;
      int32_t acc = 0;
      for (int64_t k = 0; k < K; ++k) acc += (xq[k] - xp.zero_point) * int32_t(q[k]);
      float v = float(acc) * (xp.scale * w.scale[n]);
      if (w.bias) v += w.bias[n];
      y.p[m * y.s0 + n * y.s1] = v;
    }
  }
}

#if defined(LOOM_X86_KERNELS)

namespace {

constexpr int64_t kJB = 64;  // activation rows per panel (four zmm of 16 int32 lanes)
constexpr int kIR = 6;       // weight rows per micro tile

// 16 floats -> 16 int32 in [0, 255] (quantize_u8's rule, vectorised: fma, clamp in float, round to nearest even).
LOOM_TARGET_AVX512_VNNI inline __m512i quantize16_vnni(__m512 v, __m512 inv, __m512 zp) {
  v = _mm512_fmadd_ps(v, inv, zp);
  v = _mm512_max_ps(v, _mm512_setzero_ps());  // NaN (first operand) -> 0
  v = _mm512_min_ps(v, _mm512_set1_ps(255.0f));
  return _mm512_cvt_roundps_epi32(v, _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC);
}

// Packs activation rows j0 .. j0 + jn (jn <= 64) of x into dst: K4 groups of 256 bytes, group k4 holding
// rows' u8 values (k4 * 4 + 0..3) as one dword per row. Rows past jn and k past K are zero.
LOOM_TARGET_AVX512_VNNI void pack_panel_vnni(const ConstStridedF32& x, int64_t j0, int64_t jn, int64_t K, const Int8Params& xp, uint8_t* dst,
                std::vector<uint8_t>& rowbuf) {
  const int64_t K4 = (K + 3) / 4;
  const float invs = 1.0f / xp.scale, zps = float(xp.zero_point);
  const __m512 inv = _mm512_set1_ps(invs), zp = _mm512_set1_ps(zps);
  if (x.s0 == 1) {
    // Rows contiguous (an unfolded convolution sample): 16 rows x 4 k become one zmm of dwords directly.
    for (int64_t k4 = 0; k4 < K4; ++k4) {
      for (int64_t c = 0; c < kJB; c += 16) {
        const int64_t n = std::clamp<int64_t>(jn - c, 0, 16);
        const __mmask16 m = n >= 16 ? __mmask16(0xFFFF) : __mmask16((1u << n) - 1);
        __m512i packed = _mm512_setzero_si512();
        for (int kk = 0; kk < 4 && n > 0; ++kk) {
          const int64_t k = k4 * 4 + kk;
          if (k >= K) break;
          const __m512 v = _mm512_maskz_loadu_ps(m, x.p + (j0 + c) + k * x.s1);
          const __m512i q = _mm512_maskz_mov_epi32(m, quantize16_vnni(v, inv, zp));
          packed = _mm512_or_si512(packed, _mm512_slli_epi32(q, 8 * kk));
        }
        _mm512_storeu_si512(dst + k4 * 256 + c * 4, packed);
      }
    }
    return;
  }
  // Otherwise quantize each row into a zero-padded u8 row, then deal its dwords out to the groups.
  const int64_t Kp = K4 * 4;
  rowbuf.assign(size_t(kJB * Kp), 0);
  for (int64_t jj = 0; jj < jn; ++jj) {
    const float* src = x.p + (j0 + jj) * x.s0;
    uint8_t* row = rowbuf.data() + jj * Kp;
    int64_t k = 0;
    if (x.s1 == 1) {
      for (; k + 16 <= K; k += 16)
        _mm_storeu_si128(reinterpret_cast<__m128i*>(row + k), _mm512_cvtepi32_epi8(quantize16_vnni(_mm512_loadu_ps(src + k), inv, zp)));
    }
    for (; k < K; ++k) row[k] = quantize_u8(src[k * x.s1], invs, zps);
  }
  for (int64_t k4 = 0; k4 < K4; ++k4) {
    uint32_t* g = reinterpret_cast<uint32_t*>(dst + k4 * 256);
    for (int64_t jj = 0; jj < kJB; ++jj) std::memcpy(g + jj, rowbuf.data() + jj * Kp + k4 * 4, 4);
  }
}

// acc[r][c] = sum over k4 of weight row r's dword k4 (s8 x 4) . panel group k4's zmm c (u8 x 4 per lane). The
// loops over r and c are unrolled completely so the 4 R accumulators live in registers (29 of 32 zmm at R = 6).
template <int R>
LOOM_TARGET_AVX512_VNNI void micro_tile_vnni(const int8_t* a, int64_t lda, const uint8_t* panel, int64_t K4, int32_t* tile /* R x 64 */) {
  __m512i acc[R][4];
#pragma GCC unroll 8
  for (int r = 0; r < R; ++r) {
    acc[r][0] = _mm512_setzero_si512();
    acc[r][1] = _mm512_setzero_si512();
    acc[r][2] = _mm512_setzero_si512();
    acc[r][3] = _mm512_setzero_si512();
  }
  for (int64_t k4 = 0; k4 < K4; ++k4) {
    const uint8_t* g = panel + k4 * 256;
    const __m512i b0 = _mm512_loadu_si512(g), b1 = _mm512_loadu_si512(g + 64);
    const __m512i b2 = _mm512_loadu_si512(g + 128), b3 = _mm512_loadu_si512(g + 192);
#pragma GCC unroll 8
    for (int r = 0; r < R; ++r) {
      int32_t wd;
      std::memcpy(&wd, a + r * lda + k4 * 4, 4);
      const __m512i wv = _mm512_set1_epi32(wd);
      acc[r][0] = _mm512_dpbusd_epi32(acc[r][0], b0, wv);
      acc[r][1] = _mm512_dpbusd_epi32(acc[r][1], b1, wv);
      acc[r][2] = _mm512_dpbusd_epi32(acc[r][2], b2, wv);
      acc[r][3] = _mm512_dpbusd_epi32(acc[r][3], b3, wv);
    }
  }
#pragma GCC unroll 8
  for (int r = 0; r < R; ++r) {
    _mm512_storeu_si512(tile + r * kJB, acc[r][0]);
    _mm512_storeu_si512(tile + r * kJB + 16, acc[r][1]);
    _mm512_storeu_si512(tile + r * kJB + 32, acc[r][2]);
    _mm512_storeu_si512(tile + r * kJB + 48, acc[r][3]);
  }
}

using TileFn = void (*)(const int8_t*, int64_t, const uint8_t*, int64_t, int32_t*);
constexpr TileFn kTiles[kIR + 1] = {nullptr,           micro_tile_vnni<1>, micro_tile_vnni<2>, micro_tile_vnni<3>,
                                    micro_tile_vnni<4>, micro_tile_vnni<5>, micro_tile_vnni<6>};

// Scales, bias and the zero-point correction for R weight rows x jn activation rows of a tile.
LOOM_TARGET_AVX512_VNNI void store_tile_vnni(const int32_t* tile, int R, int64_t n0, int64_t j0, int64_t jn, const StridedF32& y, const Int8Params& xp,
                const Int8Weights& w) {
  for (int r = 0; r < R; ++r) {
    const int64_t n = n0 + r;
    const int32_t corr = xp.zero_point * w.sums[n];
    const float s = xp.scale * w.scale[n], b = w.bias ? w.bias[n] : 0.0f;
    const int32_t* t = tile + r * kJB;
    if (y.s0 == 1) {
      const __m512i vc = _mm512_set1_epi32(corr);
      const __m512 vs = _mm512_set1_ps(s), vb = _mm512_set1_ps(b);
      float* out = y.p + j0 + n * y.s1;
      for (int64_t c = 0; c < jn; c += 16) {
        const int64_t left = jn - c;
        const __mmask16 m = left >= 16 ? __mmask16(0xFFFF) : __mmask16((1u << left) - 1);
        const __m512 v = _mm512_cvtepi32_ps(_mm512_sub_epi32(_mm512_loadu_si512(t + c), vc));
        __m512 o = _mm512_mul_ps(v, vs);
        if (w.bias) o = _mm512_add_ps(o, vb);
        _mm512_mask_storeu_ps(out + c, m, o);
      }
    } else {
      for (int64_t jj = 0; jj < jn; ++jj) {
        float v = float(t[jj] - corr) * s;
        if (w.bias) v += b;
        y.p[(j0 + jj) * y.s0 + n * y.s1] = v;
      }
    }
  }
}

// Few activation rows (a Linear on one sample): packing 64-row panels would be mostly padding, so each u8 row is
// dotted with each weight row directly, 64 bytes per vpdpbusd, up to four activation rows per weight row read.
LOOM_TARGET_AVX512_VNNI void int8_gemm_few_rows_vnni(StridedF32 y, ConstStridedF32 x, int64_t M, int64_t K, Int8Params xp, const Int8Weights& w) {
  const int64_t K64 = (K + 63) / 64 * 64;
  const float invs = 1.0f / xp.scale, zps = float(xp.zero_point);
  const __m512 inv = _mm512_set1_ps(invs), zp = _mm512_set1_ps(zps);
  std::vector<uint8_t> xq(size_t(M * K64), 0);
  for (int64_t m = 0; m < M; ++m) {
    const float* src = x.p + m * x.s0;
    uint8_t* row = xq.data() + m * K64;
    int64_t k = 0;
    if (x.s1 == 1) {
      for (; k + 16 <= K; k += 16)
        _mm_storeu_si128(reinterpret_cast<__m128i*>(row + k), _mm512_cvtepi32_epi8(quantize16_vnni(_mm512_loadu_ps(src + k), inv, zp)));
    }
    for (; k < K; ++k) row[k] = quantize_u8(src[k * x.s1], invs, zps);
  }
  const int64_t N = w.N;
#pragma omp parallel for schedule(static) if (M * N * K > (1 << 18))
  for (int64_t n = 0; n < N; ++n) {
    const int8_t* q = w.q + n * K;
    const int32_t corr = xp.zero_point * w.sums[n];
    const float s = xp.scale * w.scale[n];
    for (int64_t m0 = 0; m0 < M; m0 += 4) {
      const int R = int(std::min<int64_t>(4, M - m0));
      __m512i acc[4] = {_mm512_setzero_si512(), _mm512_setzero_si512(), _mm512_setzero_si512(), _mm512_setzero_si512()};
      for (int64_t k = 0; k < K; k += 64) {
        const int64_t left = K - k;
        const __mmask64 mask = left >= 64 ? ~__mmask64(0) : (__mmask64(1) << left) - 1;
        const __m512i wv = _mm512_maskz_loadu_epi8(mask, q + k);
#pragma GCC unroll 4
        for (int r = 0; r < 4; ++r)
          if (r < R) acc[r] = _mm512_dpbusd_epi32(acc[r], _mm512_loadu_si512(xq.data() + (m0 + r) * K64 + k), wv);
      }
      for (int r = 0; r < R; ++r) {
        float v = float(_mm512_reduce_add_epi32(acc[r]) - corr) * s;
        if (w.bias) v += w.bias[n];
        y.p[(m0 + r) * y.s0 + n * y.s1] = v;
      }
    }
  }
}

LOOM_TARGET_AVX512_VNNI void int8_gemm_batched_vnni(StridedF32 y, int64_t y_sb, ConstStridedF32 x, int64_t x_sb,
                                                   int64_t B, int64_t M, int64_t K, Int8Params xp, const Int8Weights& w) {
  if (M < 8) {
    for (int64_t b = 0; b < B; ++b)
      int8_gemm_few_rows_vnni({y.p + b * y_sb, y.s0, y.s1}, {x.p + b * x_sb, x.s0, x.s1}, M, K, xp, w);
    return;
  }
  const int64_t K4 = (K + 3) / 4, Kp = K4 * 4, N = w.N;
  // Weight rows padded to whole dwords (zeros contribute nothing); used in place when K already is.
  std::vector<int8_t> padded;
  const int8_t* a = w.q;
  if (Kp != K) {
    padded.assign(size_t(N * Kp), 0);
    for (int64_t n = 0; n < N; ++n) std::memcpy(padded.data() + n * Kp, w.q + n * K, size_t(K));
    a = padded.data();
  }
  // Panels of every batch entry, numbered batch-major; one parallel region for the whole call.
  const int64_t per = (M + kJB - 1) / kJB, panels = B * per, panel_bytes = K4 * 256;
  std::vector<uint8_t> packed(size_t(panels * panel_bytes));
  const bool big = B * M * N * K > (1 << 18);
#pragma omp parallel if (big)
  {
    std::vector<uint8_t> rowbuf;
#pragma omp for schedule(static)
    for (int64_t p = 0; p < panels; ++p) {
      const int64_t b = p / per, j0 = (p % per) * kJB;
      pack_panel_vnni({x.p + b * x_sb, x.s0, x.s1}, j0, std::min(kJB, M - j0), K, xp, packed.data() + p * panel_bytes,
                 rowbuf);
    }
    const int64_t row_blocks = (N + kIR - 1) / kIR;
    alignas(64) int32_t tile[kIR * kJB];
#pragma omp for collapse(2) schedule(static)
    for (int64_t p = 0; p < panels; ++p) {
      for (int64_t rb = 0; rb < row_blocks; ++rb) {
        const int64_t b = p / per, j0 = (p % per) * kJB, n0 = rb * kIR;
        const int R = int(std::min<int64_t>(kIR, N - n0));
        kTiles[R](a + n0 * Kp, Kp, packed.data() + p * panel_bytes, K4, tile);
        store_tile_vnni(tile, R, n0, j0, std::min(kJB, M - j0), {y.p + b * y_sb, y.s0, y.s1}, xp, w);
      }
    }
  }
}

}  // namespace

#endif  // LOOM_X86_KERNELS

bool int8_gemm_is_vnni() { return cpu::has_avx512_vnni(); }

void int8_gemm_batched(StridedF32 y, int64_t y_sb, ConstStridedF32 x, int64_t x_sb, int64_t B, int64_t M, int64_t K,
                       Int8Params xp, const Int8Weights& w) {
  if (B == 0 || M == 0 || w.N == 0) return;
#if defined(LOOM_X86_KERNELS)
  if (cpu::has_avx512_vnni()) return int8_gemm_batched_vnni(y, y_sb, x, x_sb, B, M, K, xp, w);
#endif
  for (int64_t b = 0; b < B; ++b) int8_gemm_ref({y.p + b * y_sb, y.s0, y.s1}, {x.p + b * x_sb, x.s0, x.s1}, M, K, xp, w);
}

void int8_gemm(StridedF32 y, ConstStridedF32 x, int64_t M, int64_t K, Int8Params xp, const Int8Weights& w) {
  int8_gemm_batched(y, 0, x, 0, 1, M, K, xp, w);
}

}  // namespace loom::quant
