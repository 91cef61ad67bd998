// ggml's Q8_0 / Q4_0 blocks: layout sizes, byte-exact quantization of hand-computed blocks (values chosen so
// each byte can be worked out on paper), ggml's rounding rules (half away from zero for Q8_0, truncation of
// x/d + 8.5 and the clamp at 15 for Q4_0), and the quantize -> dequantize error bound on random rows.
#include <gtest/gtest.h>

#include <cmath>
#include <cstring>
#include <vector>

#include "loom/loom.h"
#include "loom/core/quant_blocks.h"

using namespace loom;
using namespace loom::quant;

TEST(QuantBlocks, LayoutMatchesGgml) {
  EXPECT_EQ(sizeof(BlockQ8_0), 34u);
  EXPECT_EQ(sizeof(BlockQ4_0), 18u);
  EXPECT_EQ(offsetof(BlockQ8_0, qs), 2u);
  EXPECT_EQ(offsetof(BlockQ4_0, qs), 2u);
  EXPECT_EQ(row_bytes(QuantFormat::q8_0, 768), 24u * 34u);
  EXPECT_EQ(row_bytes(QuantFormat::q4_0, 768), 24u * 18u);
  EXPECT_THROW(row_bytes(QuantFormat::q8_0, 33), Error);
  EXPECT_EQ(parse_format("q4_0"), QuantFormat::q4_0);
  EXPECT_THROW(parse_format("q5_0"), Error);
}

TEST(QuantBlocks, Q8_0ExactScaleOne) {
  // amax = 127 -> d = 1 (f16 0x3C00) and q = x; 2.5 rounds away from zero to 3 (roundf), -2.5 to -3.
  float x[32];
  for (int j = 0; j < 32; ++j) x[j] = float(j - 16);
  x[0] = -127.0f;
  x[5] = 2.5f;
  x[6] = -2.5f;
  BlockQ8_0 b;
  quantize_row_q8_0(x, &b, 32);
  uint8_t bytes[34];
  std::memcpy(bytes, &b, 34);
  EXPECT_EQ(bytes[0], 0x00);  // d = 0x3C00, little endian
  EXPECT_EQ(bytes[1], 0x3C);
  for (int j = 0; j < 32; ++j) {
    const int expect = j == 0 ? -127 : j == 5 ? 3 : j == 6 ? -3 : j - 16;
    EXPECT_EQ(int(b.qs[j]), expect) << "j=" << j;
  }
}

TEST(QuantBlocks, Q8_0Ramp) {
  // x = j - 16: amax 16, d = 16/127 = 0.1259843 -> f16 0x3008 (0.1259766); id = 7.9375 so q = round((j-16) * 7.9375).
  float x[32];
  for (int j = 0; j < 32; ++j) x[j] = float(j - 16);
  BlockQ8_0 b;
  quantize_row_q8_0(x, &b, 32);
  EXPECT_EQ(b.d, 0x3008);
  const int expect[32] = {-127, -119, -111, -103, -95, -87, -79, -71, -64, -56, -48, -40, -32, -24, -16, -8,
                          0,    8,    16,   24,   32,  40,  48,  56,  64,  71,  79,  87,  95,  103, 111, 119};
  for (int j = 0; j < 32; ++j) EXPECT_EQ(int(b.qs[j]), expect[j]) << "j=" << j;
  float y[32];
  dequantize_row_q8_0(&b, y, 32);
  EXPECT_FLOAT_EQ(y[0], -127.0f * 0.12597656f);
  EXPECT_FLOAT_EQ(y[31], 119.0f * 0.12597656f);
}

TEST(QuantBlocks, Q4_0ExactNibbles) {
  // x = (j % 16) - 8: max = -8 -> d = 1 (0x3C00), q = x + 8 = j % 16, so byte j = j | j << 4.
  float x[32];
  for (int j = 0; j < 32; ++j) x[j] = float(j % 16 - 8);
  BlockQ4_0 b;
  quantize_row_q4_0(x, &b, 32);
  EXPECT_EQ(b.d, 0x3C00);
  for (int j = 0; j < 16; ++j) EXPECT_EQ(int(b.qs[j]), j | (j << 4)) << "j=" << j;
  float y[32];
  dequantize_row_q4_0(&b, y, 32);
  for (int j = 0; j < 32; ++j) EXPECT_EQ(y[j], x[j]);
}

TEST(QuantBlocks, Q4_0PositiveMaxClampsAtFifteen) {
  // max = +8 -> d = -1 (0xBC00): q = (int8)(-x + 8.5), so 8 -> 0, -7 -> 15 and -8 -> 16, clamped to 15 (dequantized
  // as -7: Q4_0 cannot hold -max); element j = 1 (3.4 -> (int8)5.1 = 5) and j + 16 = 17 (-3.6 -> 12) share byte 1.
  float x[32] = {};
  x[0] = 8.0f;
  x[16] = -7.0f;
  x[2] = -8.0f;
  x[1] = 3.4f;
  x[17] = -3.6f;
  BlockQ4_0 b;
  quantize_row_q4_0(x, &b, 32);
  EXPECT_EQ(b.d, 0xBC00);
  EXPECT_EQ(int(b.qs[0]), 0 | (15 << 4));
  EXPECT_EQ(int(b.qs[1]), 5 | (12 << 4));
  EXPECT_EQ(int(b.qs[2]), 15 | (8 << 4));  // x[2] = -8 clamped; x[18] = 0 -> 8
  float y[32];
  dequantize_row_q4_0(&b, y, 32);
  EXPECT_EQ(y[0], 8.0f);
  EXPECT_EQ(y[16], -7.0f);
  EXPECT_EQ(y[2], -7.0f);
  EXPECT_EQ(y[1], 3.0f);
  EXPECT_EQ(y[17], -4.0f);
}

TEST(QuantBlocks, ZeroBlockHasZeroScale) {
  float x[32] = {};
  BlockQ8_0 a;
  BlockQ4_0 b;
  quantize_row_q8_0(x, &a, 32);
  quantize_row_q4_0(x, &b, 32);
  EXPECT_EQ(a.d, 0);
  EXPECT_EQ(b.d, 0x8000);  // Q4_0's d = max / -8 = 0 / -8 is -0.0f, as in ggml
  for (int j = 0; j < 32; ++j) EXPECT_EQ(a.qs[j], 0);
  for (int j = 0; j < 16; ++j) EXPECT_EQ(b.qs[j], 0x88);  // q = 8 means zero
}

TEST(QuantBlocks, RoundTripErrorBound) {
  // Per block, |x - deq(q(x))| <= d/2 (+ f16 rounding of d) for Q8_0 and <= d/2 + the clamp for Q4_0.
  manual_seed(3);
  const int64_t n = 32 * 64;
  Tensor t = randn({n});
  const float* x = t.data<float>();
  std::vector<BlockQ8_0> q8(n / 32);
  std::vector<BlockQ4_0> q4(n / 32);
  std::vector<float> y8(n), y4(n);
  quantize_row_q8_0(x, q8.data(), n);
  dequantize_row_q8_0(q8.data(), y8.data(), n);
  quantize_row_q4_0(x, q4.data(), n);
  dequantize_row_q4_0(q4.data(), y4.data(), n);
  for (int64_t b = 0; b < n / 32; ++b) {
    float amax = 0;
    for (int j = 0; j < 32; ++j) amax = std::max(amax, std::fabs(x[b * 32 + j]));
    for (int j = 0; j < 32; ++j) {
      const int64_t i = b * 32 + j;
      EXPECT_LE(std::fabs(x[i] - y8[i]), amax / 127.0f * 0.5f + amax * 1e-3f) << i;
      EXPECT_LE(std::fabs(x[i] - y4[i]), amax / 8.0f * 1.0f + amax * 1e-3f) << i;
    }
  }
}
