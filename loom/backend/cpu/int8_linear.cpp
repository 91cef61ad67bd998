// Backend::int8_* on the CPU: dynamic int8 quantization with PyTorch's (fbgemm's) rules, the product through
// int8_gemm.h's VNNI kernel (its reference loops where the CPU has no VNNI).
#include <algorithm>
#include <cmath>

#include "loom/backend/cpu/cpu_backend.h"
#include "loom/backend/cpu/int8_gemm.h"

namespace loom::cpu {

namespace {

void check_int8_weight(const Tensor& q, int64_t N, int64_t K, const char* entry) {
  LOOM_CHECK(q.dtype() == DType::u8 && q.dim() == 2 && q.is_contiguous() && q.size(0) == N && q.size(1) == K, entry,
             ": expected contiguous int8 weights as u8 (", N, ", ", K, "), got ", dtype_name(q.dtype()), " ", q.shape());
}

void check_vec(const Tensor& t, DType dt, int64_t n, const char* what, const char* entry) {
  LOOM_CHECK(t.defined() && t.dtype() == dt && t.is_contiguous() && t.numel() == n, entry, ": ", what, " must be a ",
             "contiguous ", dtype_name(dt), " tensor of ", n, " values");
}

}  // namespace

void CpuBackend::int8_quantize_weight(Tensor& q, Tensor& scale, const Tensor& w) {
  LOOM_CHECK(w.dtype() == DType::f32 && w.dim() == 2 && w.is_contiguous(), "int8_quantize_weight: expected a "
             "contiguous f32 (N, K) weight, got ", w.shape());
  const int64_t N = w.size(0), K = w.size(1);
  check_int8_weight(q, N, K, "int8_quantize_weight");
  check_vec(scale, DType::f32, N, "scale", "int8_quantize_weight");
  const float* src = w.data<float>();
  auto* dst = reinterpret_cast<int8_t*>(q.data<uint8_t>());
  float* s = scale.data<float>();
  for (int64_t i = 0; i < N * K; ++i)
    LOOM_CHECK(std::isfinite(src[i]), "int8_quantize_weight: the weight holds a non-finite value (", src[i], ") in row ",
               i / K, "; a diverged model cannot be quantized");
  for (int64_t n = 0; n < N; ++n) quant::quantize_int8_row(src + n * K, dst + n * K, s + n, K);
}

void CpuBackend::int8_row_sums(Tensor& sums, const Tensor& q) {
  LOOM_CHECK(q.dim() == 2, "int8_row_sums: expected (N, K) weights, got ", q.shape());
  const int64_t N = q.size(0), K = q.size(1);
  check_int8_weight(q, N, K, "int8_row_sums");
  check_vec(sums, DType::i32, N, "sums", "int8_row_sums");
  const auto* src = reinterpret_cast<const int8_t*>(q.data<uint8_t>());
  int32_t* out = sums.data<int32_t>();
  for (int64_t n = 0; n < N; ++n) {
    int32_t s = 0;
    for (int64_t k = 0; k < K; ++k) s += src[n * K + k];
    out[n] = s;
  }
}

Int8Params CpuBackend::int8_choose_params(const Tensor& x) {
  LOOM_CHECK(x.dtype() == DType::f32 && x.is_contiguous(), "int8_choose_params: expected a contiguous f32 tensor, got ",
             dtype_name(x.dtype()), " ", x.shape());
  const float* p = x.data<float>();
  const int64_t n = x.numel();
  // Both ends start at 0: the range is widened to hold 0 anyway. A NaN fails every comparison and is caught below.
  float lo = 0, hi = 0;
  int64_t nan = 0;
  for (int64_t i = 0; i < n; ++i) {
    const float v = p[i];
    lo = v < lo ? v : lo;
    hi = v > hi ? v : hi;
    nan += v != v;
  }
  LOOM_CHECK(nan == 0, "int8 quantization: the input holds ", nan, " NaN value(s); the activation range is undefined");
  LOOM_CHECK(std::isfinite(lo) && std::isfinite(hi), "int8 quantization: the input holds an infinite value (min ", lo,
             ", max ", hi, "); the activation range is undefined");
  return quant::choose_int8_params(lo, hi);
}

// x and y are (M, K) / (M, N) views, or batched (B, M, K) / (B, M, N) views (a convolution's unfolded samples, each
// transposed), with any strides.
void CpuBackend::int8_linear(Tensor& y, const Tensor& x, Int8Params xp, const Tensor& q, const Tensor& scale,
                             const Tensor& sums, const Tensor& bias) {
  LOOM_CHECK(x.dtype() == DType::f32 && (x.dim() == 2 || x.dim() == 3), "int8_linear: expected an f32 (M, K) or "
             "(B, M, K) input, got ", x.shape());
  const bool batched = x.dim() == 3;
  const int64_t B = batched ? x.size(0) : 1, M = x.size(-2), K = x.size(-1);
  LOOM_CHECK(q.dim() == 2, "int8_linear: expected (N, K) weights, got ", q.shape());
  const int64_t N = q.size(0);
  check_int8_weight(q, N, K, "int8_linear");
  check_vec(scale, DType::f32, N, "scale", "int8_linear");
  check_vec(sums, DType::i32, N, "sums", "int8_linear");
  if (bias.defined()) check_vec(bias, DType::f32, N, "bias", "int8_linear");
  LOOM_CHECK(y.dtype() == DType::f32 && y.dim() == x.dim() && y.size(-2) == M && y.size(-1) == N &&
                 (!batched || y.size(0) == B),
             "int8_linear: output ", y.shape(), " does not match the input ", x.shape(), " and ", N, " outputs");
  LOOM_CHECK(xp.scale > 0 && std::isfinite(xp.scale) && xp.zero_point >= 0 && xp.zero_point <= 255,
             "int8_linear: bad activation parameters (scale ", xp.scale, ", zero point ", xp.zero_point, ")");
  const quant::Int8Weights w{reinterpret_cast<const int8_t*>(q.data<uint8_t>()), scale.data<float>(),
                             sums.data<int32_t>(), bias.defined() ? bias.data<float>() : nullptr, N};
  quant::int8_gemm_batched({y.data<float>(), y.stride(-2), y.stride(-1)}, batched ? y.stride(0) : 0,
                           {x.data<float>(), x.stride(-2), x.stride(-1)}, batched ? x.stride(0) : 0, B, M, K, xp, w);
}

}  // namespace loom::cpu
