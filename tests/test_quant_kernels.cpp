// The fast quantized kernels (quant/qgemm.h) against the reference loops of quant/blocks.h: the activation
// quantizer bit for bit (including ties that roundf and round-to-even disagree on), the dot products and
// qgemm on odd shapes (M = 1..9 rows around the 4-row tile, N odd, K from one block to many), with a bias,
// and QuantizedLinear against a float Linear whose weight is the dequantized blocks.
#include <gtest/gtest.h>

#include <cmath>
#include <cstring>
#include <vector>

#include "loom/loom.h"
#include "support/random_buffer.h"
#include "loom/backend/cpu/qgemm.h"
#include "loom/quant/quantized_linear.h"

using namespace loom;
using namespace loom::quant;

namespace {

using loom::test::random_buffer;

std::vector<uint8_t> quantize_matrix(QuantFormat f, const std::vector<float>& w, int64_t N, int64_t K) {
  std::vector<uint8_t> out(N * row_bytes(f, K));
  for (int64_t n = 0; n < N; ++n) quantize_row(f, w.data() + n * K, out.data() + n * row_bytes(f, K), K);
  return out;
}

}  // namespace

TEST(QuantKernels, ActivationQuantizerIsBitExact) {
  const int64_t M = 7, K = 96;
  std::vector<float> x = random_buffer(M * K, 11);
  // Ties: with amax 127 the scale is 1, so 2.5 / -0.5 / 126.5 hit roundf's half-away-from-zero case.
  x[0] = 127.0f;
  x[1] = 2.5f;
  x[2] = -0.5f;
  x[3] = 126.5f;
  for (int j = 32; j < 64; ++j) x[j] = 0.0f;  // an all-zero block
  std::vector<BlockQ8_0> fast(M * K / 32), ref(M * K / 32);
  quantize_rows_q8_0(x.data(), fast.data(), M, K);
  quantize_row_q8_0(x.data(), ref.data(), M * K);
  EXPECT_EQ(std::memcmp(fast.data(), ref.data(), fast.size() * sizeof(BlockQ8_0)), 0);
  EXPECT_EQ(ref[0].qs[1], 3);
  EXPECT_EQ(ref[0].qs[2], -1);
}

TEST(QuantKernels, QgemmMatchesReference) {
  for (QuantFormat f : {QuantFormat::q8_0, QuantFormat::q4_0})
    for (int64_t M : {1, 2, 3, 4, 5, 8, 9, 13, 16, 70})
      for (auto [N, K] : {std::pair<int64_t, int64_t>{1, 32}, {7, 64}, {16, 64}, {33, 96}, {48, 160}, {65, 768}}) {
        std::vector<float> w = random_buffer(N * K, 1), x = random_buffer(M * K, 2), bias = random_buffer(N, 3);
        auto wq = quantize_matrix(f, w, N, K);
        std::vector<BlockQ8_0> xq(M * K / 32);
        quantize_row_q8_0(x.data(), xq.data(), M * K);
        std::vector<float> y(M * N), y_ref(M * N);
        qgemm(f, wq.data(), xq.data(), bias.data(), y.data(), M, N, K);
        qgemm_ref(f, wq.data(), xq.data(), bias.data(), y_ref.data(), M, N, K);
        // Integer block sums are exact in both; only the float accumulation order differs.
        for (int64_t i = 0; i < M * N; ++i)
          ASSERT_NEAR(y[i], y_ref[i], 1e-4f * (1.0f + std::fabs(y_ref[i])))
              << format_name(f) << " M=" << M << " N=" << N << " K=" << K << " i=" << i;
        // vec_dot alone, on the last row pair.
        const float d = vec_dot(f, wq.data() + (N - 1) * row_bytes(f, K), xq.data() + (M - 1) * K / 32, K);
        EXPECT_NEAR(d + bias[N - 1], y_ref[(M - 1) * N + N - 1], 1e-4f * (1.0f + std::fabs(d)));
      }
}

TEST(QuantKernels, QuantizedLinearApproximatesLinear) {
  manual_seed(5);
  nn::Linear fc({.in = 128, .out = 40});
  Tensor x = randn({3, 5, 128});
  NoGradGuard g;
  for (QuantFormat f : {QuantFormat::q8_0, QuantFormat::q4_0}) {
    auto q = QuantizedLinear::from_linear(fc, f);
    EXPECT_FALSE(q->weight.defined());
    EXPECT_EQ(q->named_parameters().size(), 1u);  // bias only; the blocks are the weight_q buffer
    Tensor y = (*q)(x);
    ASSERT_EQ(y.shape(), (Shape{3, 5, 40}));
    // Against the float product with the dequantized weight: the only difference left is the activations'
    // Q8_0 rounding, at most half a step (amax/254) per element.
    Tensor y_deq = linear(x, q->dequantized_weight(), fc.bias);
    const double err = (y - y_deq).abs().max().item();
    const double scale = y_deq.abs().max().item();
    EXPECT_LT(err, 0.02 * scale) << format_name(f);
    // And the quantized layer is close to the float one (4-bit weights: looser).
    const double err_fc = (y - fc(x)).abs().max().item();
    EXPECT_LT(err_fc, (f == QuantFormat::q8_0 ? 0.03 : 0.25) * scale) << format_name(f);
  }
}

TEST(QuantKernels, QuantizedLinearRejectsBadInput) {
  nn::Linear fc({.in = 64, .out = 8});
  auto q = QuantizedLinear::from_linear(fc, QuantFormat::q8_0);
  NoGradGuard g;
  EXPECT_THROW((*q)(randn({2, 63})), Error);
  nn::Linear odd({.in = 30, .out = 8});
  EXPECT_THROW(QuantizedLinear::from_linear(odd, QuantFormat::q4_0), Error);
}
