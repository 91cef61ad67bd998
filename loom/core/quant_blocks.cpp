// Reference quantization: the arithmetic follows ggml's quantize_row_q8_0_ref / quantize_row_q4_0_ref
// operation for operation (scale from the float amax, inverse scale in float, round / truncate the same way),
// so the bytes match a GGUF file written by llama.cpp for the same floats.
#include "loom/core/quant_blocks.h"

#include <cmath>
#include <cstring>

#include "loom/core/dtype.h"
#include "loom/core/error.h"

namespace loom::quant {

std::string format_name(QuantFormat f) { return f == QuantFormat::q8_0 ? "q8_0" : "q4_0"; }

QuantFormat parse_format(const std::string& s) {
  if (s == "q8_0") return QuantFormat::q8_0;
  if (s == "q4_0") return QuantFormat::q4_0;
  LOOM_FAIL("quantization format: expected q8_0 or q4_0, got '", s, "'");
}

size_t block_bytes(QuantFormat f) { return f == QuantFormat::q8_0 ? sizeof(BlockQ8_0) : sizeof(BlockQ4_0); }

size_t row_bytes(QuantFormat f, int64_t n) {
  LOOM_CHECK(n % QK == 0, "quant: a row of ", n, " values is not a multiple of the block size ", QK);
  return size_t(n / QK) * block_bytes(f);
}

uint16_t fp32_to_fp16(float f) { return f16(f).bits; }

float fp16_to_fp32(uint16_t h) {
  f16 v;
  v.bits = h;
  return float(v);
}

static void check_n(int64_t n) {
  LOOM_CHECK(n % QK == 0, "quant: row length ", n, " is not a multiple of the block size ", QK);
}

void quantize_row_q8_0(const float* x, BlockQ8_0* y, int64_t n) {
  check_n(n);
  for (int64_t b = 0; b < n / QK; ++b, x += QK) {
    float amax = 0.0f;
    for (int j = 0; j < QK; ++j) amax = std::max(amax, std::fabs(x[j]));
    const float d = amax / 127.0f;
    const float id = d != 0.0f ? 1.0f / d : 0.0f;
    y[b].d = fp32_to_fp16(d);
    for (int j = 0; j < QK; ++j) y[b].qs[j] = int8_t(std::roundf(x[j] * id));
  }
}

void dequantize_row_q8_0(const BlockQ8_0* x, float* y, int64_t n) {
  check_n(n);
  for (int64_t b = 0; b < n / QK; ++b) {
    const float d = fp16_to_fp32(x[b].d);
    for (int j = 0; j < QK; ++j) y[b * QK + j] = float(x[b].qs[j]) * d;
  }
}

void quantize_row_q4_0(const float* x, BlockQ4_0* y, int64_t n) {
  check_n(n);
  for (int64_t b = 0; b < n / QK; ++b, x += QK) {
    float amax = 0.0f, max = 0.0f;
    for (int j = 0; j < QK; ++j)
      if (std::fabs(x[j]) > amax) {
        amax = std::fabs(x[j]);
        max = x[j];
      }
    const float d = max / -8.0f;
    const float id = d != 0.0f ? 1.0f / d : 0.0f;
    y[b].d = fp32_to_fp16(d);
    for (int j = 0; j < QK / 2; ++j) {
      // (int8_t)(v + 8.5f) truncates toward zero: ggml's rounding, reproduced exactly.
      const uint8_t lo = uint8_t(std::min(15, int(int8_t(x[j] * id + 8.5f))));
      const uint8_t hi = uint8_t(std::min(15, int(int8_t(x[j + QK / 2] * id + 8.5f))));
      y[b].qs[j] = uint8_t(lo | (hi << 4));
    }
  }
}

void dequantize_row_q4_0(const BlockQ4_0* x, float* y, int64_t n) {
  check_n(n);
  for (int64_t b = 0; b < n / QK; ++b) {
    const float d = fp16_to_fp32(x[b].d);
    for (int j = 0; j < QK / 2; ++j) {
      y[b * QK + j] = float(int(x[b].qs[j] & 0x0F) - 8) * d;
      y[b * QK + j + QK / 2] = float(int(x[b].qs[j] >> 4) - 8) * d;
    }
  }
}

void quantize_row(QuantFormat f, const float* x, void* y, int64_t n) {
  if (f == QuantFormat::q8_0) quantize_row_q8_0(x, static_cast<BlockQ8_0*>(y), n);
  else quantize_row_q4_0(x, static_cast<BlockQ4_0*>(y), n);
}

void dequantize_row(QuantFormat f, const void* x, float* y, int64_t n) {
  if (f == QuantFormat::q8_0) dequantize_row_q8_0(static_cast<const BlockQ8_0*>(x), y, n);
  else dequantize_row_q4_0(static_cast<const BlockQ4_0*>(x), y, n);
}

float vec_dot_q8_0_q8_0_ref(const BlockQ8_0* w, const BlockQ8_0* x, int64_t n) {
  float sum = 0.0f;
  for (int64_t b = 0; b < n / QK; ++b) {
    int32_t s = 0;
    for (int j = 0; j < QK; ++j) s += int32_t(w[b].qs[j]) * int32_t(x[b].qs[j]);
    sum += fp16_to_fp32(w[b].d) * fp16_to_fp32(x[b].d) * float(s);
  }
  return sum;
}

float vec_dot_q4_0_q8_0_ref(const BlockQ4_0* w, const BlockQ8_0* x, int64_t n) {
  float sum = 0.0f;
  for (int64_t b = 0; b < n / QK; ++b) {
    int32_t s = 0;
    for (int j = 0; j < QK / 2; ++j) {
      s += (int32_t(w[b].qs[j] & 0x0F) - 8) * int32_t(x[b].qs[j]);
      s += (int32_t(w[b].qs[j] >> 4) - 8) * int32_t(x[b].qs[j + QK / 2]);
    }
    sum += fp16_to_fp32(w[b].d) * fp16_to_fp32(x[b].d) * float(s);
  }
  return sum;
}

}  // namespace loom::quant
