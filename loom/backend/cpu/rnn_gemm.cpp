// Register-tiled product with a pre-packed B. A tile is kRows rows x one 32-column panel: 2 * kRows vector
// accumulators, and per k two aligned panel loads plus one broadcast per row feed 2 * kRows FMAs, so the loop is
// bound by FMA throughput, not loads. The panel streams from L2 (a 256 x 1024 weight is 1 MiB) while A's rows stay
// in L1. GCC vector extensions keep it portable: 16-float vectors become AVX-512 registers with -march=native on
// this machine, and pairs of AVX2 registers (or SSE quads) elsewhere.
#include "loom/backend/cpu/rnn_gemm.h"

#include <algorithm>
#include <cstring>

#include "loom/backend/backend.h"

namespace loom::cpu::rnn_detail {

namespace {

using v16 = float __attribute__((vector_size(64)));
using v16u = float __attribute__((vector_size(64), aligned(4)));  // for C rows, which have any alignment
constexpr int kRows = 8;

template <int MR>
void tile(int64_t K, const float* A, int64_t lda, const float* panel, bool accumulate, const float* bias, float* C,
          int64_t ldc, int64_t ncols) {
  v16 acc[MR][2];
  for (int r = 0; r < MR; ++r) acc[r][0] = acc[r][1] = v16{};
  for (int64_t k = 0; k < K; ++k) {
    const v16 b0 = *reinterpret_cast<const v16*>(panel + k * kPanel);
    const v16 b1 = *reinterpret_cast<const v16*>(panel + k * kPanel + 16);
#pragma GCC unroll 8
    for (int r = 0; r < MR; ++r) {
      const float a = A[r * lda + k];
      acc[r][0] += a * b0;
      acc[r][1] += a * b1;
    }
  }
  for (int r = 0; r < MR; ++r) {
    float* c = C + r * ldc;
    if (ncols == kPanel) {
      v16u* c0 = reinterpret_cast<v16u*>(c);
      v16u* c1 = reinterpret_cast<v16u*>(c + 16);
      if (bias) {
        acc[r][0] += *reinterpret_cast<const v16u*>(bias);
        acc[r][1] += *reinterpret_cast<const v16u*>(bias + 16);
      }
      *c0 = accumulate ? *c0 + acc[r][0] : acc[r][0];
      *c1 = accumulate ? *c1 + acc[r][1] : acc[r][1];
    } else {
      alignas(64) float tmp[kPanel];
      std::memcpy(tmp, &acc[r][0], sizeof(v16));
      std::memcpy(tmp + 16, &acc[r][1], sizeof(v16));
      for (int64_t j = 0; j < ncols; ++j) c[j] = (accumulate ? c[j] : 0.0f) + tmp[j] + (bias ? bias[j] : 0.0f);
    }
  }
}

using TileFn = void (*)(int64_t, const float*, int64_t, const float*, bool, const float*, float*, int64_t, int64_t);
constexpr TileFn kTiles[kRows + 1] = {nullptr,  tile<1>, tile<2>, tile<3>, tile<4>,
                                      tile<5>, tile<6>, tile<7>, tile<8>};

}  // namespace

PackedWeights pack_weights(const float* b, int64_t K, int64_t N, int64_t ldb, bool transpose) {
  const int64_t panels = (N + kPanel - 1) / kPanel;
  PackedWeights w{make_tensor({panels * K * kPanel}, DType::f32), K, N};
  std::memset(w.data.raw_data(), 0, size_t(panels * K * kPanel) * sizeof(float));  // the zero padding
  float* d = w.data.data<float>();
  for (int64_t p = 0; p < panels; ++p)
    for (int64_t k = 0; k < K; ++k) {
      float* row = d + (p * K + k) * kPanel;
      for (int64_t c = 0; c < kPanel && p * kPanel + c < N; ++c) {
        const int64_t n = p * kPanel + c;
        row[c] = transpose ? b[n * ldb + k] : b[k * ldb + n];
      }
    }
  return w;
}

void gemm_packed(int64_t M, const float* A, int64_t lda, const PackedWeights& B, bool accumulate, float* C,
                 int64_t ldc, const float* bias) {
  const float* d = B.data.data<float>();
  const int64_t panels = (B.N + kPanel - 1) / kPanel;
  // Panels outside, row tiles inside: each panel (K x 32 floats, 32 KB for K = 256) is read from L2/L3 once and
  // reused from L1 by every row tile, while A (the few rows of a recurrent step) stays in L1 throughout. Row
  // tiles outside read all of B once per tile: W4's 1 MB recurrent weight, 4 times a step, from L3.
  for (int64_t p = 0; p < panels; ++p)
    for (int64_t m0 = 0; m0 < M; m0 += kRows)
      kTiles[std::min<int64_t>(kRows, M - m0)](B.K, A + m0 * lda, lda, d + p * B.K * kPanel, accumulate,
                                               bias ? bias + p * kPanel : nullptr, C + m0 * ldc + p * kPanel, ldc,
                                               std::min(kPanel, B.N - p * kPanel));
}

void gemm_packed_rows(int64_t M, const float* A, int64_t lda, const PackedWeights& B, bool accumulate, float* C,
                      int64_t ldc, const float* bias) {
  // Blocks of 64 rows keep a block's A in L1/L2 while B streams; dynamic hand-out absorbs a busy core.
  const int64_t block = 64, blocks = (M + block - 1) / block;
  const bool parallel = get_num_threads() > 1 && blocks > 1 && M * B.K * B.N >= (int64_t(1) << 20);
#pragma omp parallel for schedule(dynamic, 1) if (parallel)
  for (int64_t b = 0; b < blocks; ++b)
    gemm_packed(std::min(block, M - b * block), A + b * block * lda, lda, B, accumulate, C + b * block * ldc, ldc,
                bias);
}

}  // namespace loom::cpu::rnn_detail
