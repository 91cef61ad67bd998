// ggml's Q8_0 and Q4_0 block formats, bit for bit (ggml-common.h's block_q8_0 / block_q4_0), with the
// reference quantize/dequantize loops that the fast kernels and file writers are checked against.
//   std::vector<quant::BlockQ8_0> blocks(n / 32);
//   quant::quantize_row_q8_0(x, blocks.data(), n);          // n a multiple of 32
//   quant::dequantize_row_q8_0(blocks.data(), y, n);        // y[i] ~ x[i]
//
// They live in core, below the backend, because the Backend's quantized entries (quantize_rows,
// quantized_linear) take a QuantFormat and the CPU backend's kernels (backend/cpu/qgemm.*) work on these
// structs. Weights are raw blocks in a u8 tensor (quant/quantized_linear.h); when core's DType gains block
// types that tensor takes such a dtype with no change to the bytes.
#pragma once
#include <cstddef>
#include <cstdint>
#include <string>

namespace loom::quant {

constexpr int64_t QK = 32;  // values per block, both formats (ggml's QK8_0 = QK4_0 = 32)

// 32 values x = d * q, d = amax / 127 stored as IEEE half, q int8 in [-127, 127].
struct BlockQ8_0 {
  uint16_t d;      // f16 bits
  int8_t qs[QK];
};
static_assert(sizeof(BlockQ8_0) == 34, "BlockQ8_0 must be ggml's 34-byte layout");

// 32 values x = d * (q - 8), q in [0, 15]; d = max / -8 with max the signed value of largest magnitude
// (so that value maps exactly to q = 0). Byte j holds element j in its low nibble and j + 16 in its high.
struct BlockQ4_0 {
  uint16_t d;           // f16 bits
  uint8_t qs[QK / 2];
};
static_assert(sizeof(BlockQ4_0) == 18, "BlockQ4_0 must be ggml's 18-byte layout");

enum class QuantFormat : uint8_t { q8_0, q4_0 };

// "q8_0" / "q4_0"; parse throws loom::Error naming the accepted values.
std::string format_name(QuantFormat f);
QuantFormat parse_format(const std::string& s);
// Bytes of one block, and of a row of n values (n a multiple of 32).
size_t block_bytes(QuantFormat f);
size_t row_bytes(QuantFormat f, int64_t n);

// Half-precision conversion with round-to-nearest-even, as ggml's GGML_FP32_TO_FP16 (F16C) does.
uint16_t fp32_to_fp16(float f);
float fp16_to_fp32(uint16_t h);

// Reference loops (ggml's quantize_row_*_ref / dequantize_row_*): n must be a multiple of 32.
void quantize_row_q8_0(const float* x, BlockQ8_0* y, int64_t n);
void dequantize_row_q8_0(const BlockQ8_0* x, float* y, int64_t n);
void quantize_row_q4_0(const float* x, BlockQ4_0* y, int64_t n);
void dequantize_row_q4_0(const BlockQ4_0* x, float* y, int64_t n);
// Either format into / out of a raw byte row.
void quantize_row(QuantFormat f, const float* x, void* y, int64_t n);
void dequantize_row(QuantFormat f, const void* x, float* y, int64_t n);

// Reference dot products of one weight row with one Q8_0 activation row (what the kernels compute):
// sum over blocks of d_w * d_x * sum_j(q_w[j] * q_x[j]), q_w of Q4_0 taken as q - 8.
float vec_dot_q8_0_q8_0_ref(const BlockQ8_0* w, const BlockQ8_0* x, int64_t n);
float vec_dot_q4_0_q8_0_ref(const BlockQ4_0* w, const BlockQ8_0* x, int64_t n);

}  // namespace loom::quant
