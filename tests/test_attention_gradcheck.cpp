// Float64 finite-difference gradchecks of scaled_dot_product_attention: the fused kernel (which runs in
// f64 too) and the composite path, with causal, bool and float masks, Tq != Tk and fully masked rows.
#include <gtest/gtest.h>

#include "loom/loom.h"
#include "support/gradcheck.h"

using namespace loom;
using loom::test::gradcheck;
using loom::test::rand64;

namespace {

using Attn = std::function<Tensor(const Tensor&, const Tensor&, const Tensor&, const SDPAOptions&)>;

const Attn kFused = [](const Tensor& q, const Tensor& k, const Tensor& v, const SDPAOptions& o) {
  return fused_attention(q, k, v, o);
};
const Attn kComposite = [](const Tensor& q, const Tensor& k, const Tensor& v, const SDPAOptions& o) {
  return attention_with_weights(q, k, v, o).first;
};

void check(const Attn& f, const Shape& qs, const Shape& ks, const Shape& vs, SDPAOptions o) {
  manual_seed(21);
  Tensor q = rand64(qs), k = rand64(ks), v = rand64(vs);
  EXPECT_GRADCHECK([&](const std::vector<Tensor>& in) { return f(in[0], in[1], in[2], o); }, {q, k, v});
}

void check_all(const Attn& f) {
  check(f, {2, 2, 5, 4}, {2, 2, 5, 4}, {2, 2, 5, 3}, {});
  check(f, {2, 2, 5, 4}, {2, 2, 5, 4}, {2, 2, 5, 3}, {.is_causal = true});
  check(f, {1, 2, 3, 4}, {1, 2, 7, 4}, {1, 2, 7, 2}, {.is_causal = true, .scale = 0.7});  // Tq < Tk
  check(f, {2, 6, 4}, {2, 3, 4}, {2, 3, 4}, {.is_causal = true});                          // Tq > Tk, 3-d
  manual_seed(4);
  Tensor keep = rand({2, 1, 4, 6}) > 0.4;
  keep.select(2, 1).fill_(0.0);  // a fully masked row: zero output and zero gradient, no NaN
  check(f, {2, 2, 4, 4}, {2, 2, 6, 4}, {2, 2, 6, 3}, {.attn_mask = keep});
  check(f, {2, 2, 4, 4}, {2, 2, 6, 4}, {2, 2, 6, 3}, {.attn_mask = randn({4, 6}, {.dtype = DType::f64}), .is_causal = true});
  check(f, {1, 1, 70, 4}, {1, 1, 70, 4}, {1, 1, 70, 2}, {.is_causal = true});  // more than one key tile
}

}  // namespace

TEST(AttentionGradcheck, Fused) { check_all(kFused); }
TEST(AttentionGradcheck, Composite) { check_all(kComposite); }

// The composite path also differentiates a float mask that requires grad (the fused path refuses it).
TEST(AttentionGradcheck, FloatMaskGradient) {
  manual_seed(5);
  Tensor q = rand64({1, 2, 3, 4}), k = rand64({1, 2, 5, 4}), v = rand64({1, 2, 5, 3}), m = rand64({3, 5});
  EXPECT_GRADCHECK(
      [](const std::vector<Tensor>& in) {
        return scaled_dot_product_attention(in[0], in[1], in[2], {.attn_mask = in[3]});
      },
      {q, k, v, m});
  EXPECT_THROW(fused_attention(q, k, v, {.attn_mask = m}), Error);
}

// A gradcheck that cannot fail proves nothing: a wrong scale in backward must be caught.
TEST(AttentionGradcheck, RejectsAWrongBackward) {
  manual_seed(6);
  Tensor q = rand64({1, 1, 3, 2}), k = rand64({1, 1, 3, 2}), v = rand64({1, 1, 3, 2});
  auto r = gradcheck(
      [](const std::vector<Tensor>& in) {
        // Forward with scale 0.5, backward (fused) recorded with scale 0.5 but inputs pre-scaled without history.
        Tensor qs = in[0].detach() * 2.0 + (in[0] - in[0].detach());
        return fused_attention(qs, in[1], in[2], {.scale = 0.5});
      },
      {q, k, v});
  EXPECT_FALSE(r.ok);
}
