// Backend::quantize_rows / dequantize_rows / quantized_linear on the CPU: the Q8_0 / Q4_0 block formats of
// core/quant_blocks.h, the product through qgemm.h's VNNI kernels (the reference loops where the CPU has none).
#include <vector>

#include "loom/backend/cpu/cpu_backend.h"
#include "loom/backend/cpu/qgemm.h"

namespace loom::cpu {

namespace {

void check_rows(const Tensor& q, const Tensor& f32, quant::QuantFormat f, const char* entry) {
  LOOM_CHECK(f32.dtype() == DType::f32 && f32.dim() == 2 && f32.is_contiguous(), entry,
             ": expected a contiguous f32 (rows, K) tensor, got ", f32.shape());
  const int64_t K = f32.size(1);
  LOOM_CHECK(K % quant::QK == 0, entry, ": K = ", K, " is not a multiple of ", quant::QK);
  LOOM_CHECK(q.dtype() == DType::u8 && q.dim() == 2 && q.is_contiguous() && q.size(0) == f32.size(0) &&
                 q.size(1) == int64_t(quant::row_bytes(f, K)),
             entry, ": expected contiguous u8 blocks (", f32.size(0), ", ", quant::row_bytes(f, K), "), got ", q.shape());
}

}  // namespace

void CpuBackend::quantize_rows(Tensor& dst, const Tensor& src, quant::QuantFormat f) {
  check_rows(dst, src, f, "quantize_rows");
  const int64_t R = src.size(0), K = src.size(1);
  const size_t rb = quant::row_bytes(f, K);
  const float* s = src.data<float>();
  auto* d = dst.data<uint8_t>();
#pragma omp parallel for schedule(static) if (R * K > 65536)
  for (int64_t r = 0; r < R; ++r) quant::quantize_row(f, s + r * K, d + size_t(r) * rb, K);
}

void CpuBackend::dequantize_rows(Tensor& dst, const Tensor& src, quant::QuantFormat f) {
  check_rows(src, dst, f, "dequantize_rows");
  const int64_t R = dst.size(0), K = dst.size(1);
  const size_t rb = quant::row_bytes(f, K);
  const auto* s = src.data<uint8_t>();
  float* d = dst.data<float>();
#pragma omp parallel for schedule(static) if (R * K > 65536)
  for (int64_t r = 0; r < R; ++r) quant::dequantize_row(f, s + size_t(r) * rb, d + r * K, K);
}

void CpuBackend::quantized_linear(Tensor& y, const Tensor& x, const Tensor& w, const Tensor& bias, quant::QuantFormat f) {
  LOOM_CHECK(x.dtype() == DType::f32 && x.dim() == 2 && x.is_contiguous(), "quantized_linear: expected a contiguous f32 "
             "(M, K) input, got ", x.shape());
  const int64_t M = x.size(0), K = x.size(1), N = w.size(0);
  LOOM_CHECK(K % quant::QK == 0 && w.dtype() == DType::u8 && w.dim() == 2 && w.is_contiguous() &&
                 w.size(1) == int64_t(quant::row_bytes(f, K)),
             "quantized_linear: weight blocks ", w.shape(), " do not hold rows of K = ", K, " values as ",
             quant::format_name(f));
  LOOM_CHECK(y.dtype() == DType::f32 && y.is_contiguous() && y.numel() == M * N, "quantized_linear: output ", y.shape(),
             " is not a contiguous f32 (", M, ", ", N, ")");
  LOOM_CHECK(!bias.defined() || (bias.dtype() == DType::f32 && bias.is_contiguous() && bias.numel() == N),
             "quantized_linear: bias must be f32 with ", N, " values");
  std::vector<quant::BlockQ8_0> xq(size_t(M * K / quant::QK));
  quant::quantize_rows_q8_0(x.data<float>(), xq.data(), M, K);
  quant::qgemm(f, w.data<uint8_t>(), xq.data(), bias.defined() ? bias.data<float>() : nullptr, y.data<float>(), M, N, K);
}

}  // namespace loom::cpu
