// Backend::per_sample_gemm / unfold2d on the CPU, for DP-SGD's per-sample gradients (privacy/per_sample.cpp).
#include "loom/backend/cpu/sgemm_avx512.h"

#include <algorithm>

#include "loom/backend/cpu/cpu_backend.h"

namespace loom::cpu {

// One single-threaded sgemm per sample, the samples spread over the OpenMP threads: at per-sample sizes this is
// ~50x faster than a batch of small GEMMs run one after the other with threads inside each.
void CpuBackend::per_sample_gemm(Tensor& c, const Tensor& a, bool ta, const Tensor& b, bool tb) {
  LOOM_CHECK(a.dtype() == DType::f32 && b.dtype() == DType::f32 && c.dtype() == DType::f32 && a.is_contiguous() &&
                 b.is_contiguous() && c.is_contiguous() && a.dim() == 3 && b.dim() == 3 && c.dim() == 3,
             "per_sample_gemm: expected contiguous f32 3-d tensors, got ", a.shape(), ", ", b.shape(), ", ", c.shape());
  const int64_t n = a.size(0), m = ta ? a.size(2) : a.size(1), k = ta ? a.size(1) : a.size(2);
  const int64_t p = tb ? b.size(1) : b.size(2);
  LOOM_CHECK(b.size(0) == n && (tb ? b.size(2) : b.size(1)) == k && c.size(0) == n && c.size(1) == m && c.size(2) == p,
             "per_sample_gemm: shapes ", a.shape(), " and ", b.shape(), " do not multiply into ", c.shape());
  const float* ap = a.data<float>();
  const float* bp = b.data<float>();
  float* cp = c.data<float>();
  const int64_t as = a.size(1) * a.size(2), bs = b.size(1) * b.size(2);
#pragma omp parallel for schedule(static)
  for (int64_t s = 0; s < n; ++s)
    sgemm_or_blas(ta, tb, m, p, k, 1.0f, ap + s * as, a.size(2), bp + s * bs, b.size(2), 0.0f, cp + s * m * p, p);
}

void CpuBackend::unfold2d(Tensor& cols, const Tensor& x, const ConvGeom& g) {
  LOOM_CHECK(x.dtype() == DType::f32 && x.is_contiguous() && cols.dtype() == DType::f32 && cols.is_contiguous() &&
                 cols.numel() == g.N * g.C * g.KH * g.KW * g.OH * g.OW,
             "unfold2d: expected contiguous f32 input and (N, C*KH*KW, OH*OW) output");
  const float* src = x.data<float>();
  float* dst = cols.data<float>();
  const int64_t c = g.C, h = g.H, w = g.W, ho = g.OH, wo = g.OW;
#pragma omp parallel for collapse(2) if (g.N * c > 1)
  for (int64_t s = 0; s < g.N; ++s)
    for (int64_t ch = 0; ch < c; ++ch)
      for (int64_t i = 0; i < g.KH; ++i)
        for (int64_t j = 0; j < g.KW; ++j) {
          float* row = dst + ((s * c + ch) * g.KH * g.KW + i * g.KW + j) * ho * wo;
          const float* img = src + (s * c + ch) * h * w;
          // The output columns whose input column lies inside the image, [lo, hi): zeros left and right of them,
          // and in between a copy (stride 1) or a strided gather, with no bounds test per element.
          const int64_t off = j * g.dw - g.pw;  // ix = ox * sw + off
          const int64_t lo = std::min(wo, off >= 0 ? 0 : (-off + g.sw - 1) / g.sw);
          const int64_t hi = std::max(lo, std::min(wo, w - off <= 0 ? 0 : (w - off + g.sw - 1) / g.sw));
          for (int64_t oy = 0; oy < ho; ++oy) {
            const int64_t iy = oy * g.sh - g.ph + i * g.dh;
            float* out = row + oy * wo;
            if (iy < 0 || iy >= h) {
              std::fill(out, out + wo, 0.f);
              continue;
            }
            std::fill(out, out + lo, 0.f);
            const float* in = img + iy * w;
            if (g.sw == 1) {
              std::copy(in + lo + off, in + hi + off, out + lo);
            } else {
              for (int64_t ox = lo; ox < hi; ++ox) out[ox] = in[ox * g.sw + off];
            }
            std::fill(out + hi, out + wo, 0.f);
          }
        }
}

}  // namespace loom::cpu
