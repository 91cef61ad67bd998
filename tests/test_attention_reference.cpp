// The fused flash-attention kernel against the plain reference loops (cpu/reference_attention.h), f32,
// forward and backward, on shapes that are not tile multiples, decode steps, causal and masked cases.
#include <gtest/gtest.h>

#include <cmath>

#include "loom/backend/cpu/flash_attention.h"
#include "loom/backend/cpu/reference_attention.h"
#include "loom/loom.h"
#include "support/torch_oracle.h"

using namespace loom;

namespace {

struct Run {
  Tensor out, lse, dq, dk, dv;
};

// mask: 0 none, 1 bool (broadcast over rows), 2 float (full), 3 bool with fully masked rows.
template <bool Fused>
Run run(const cpu::AttnShape& s, const Tensor& q, const Tensor& k, const Tensor& v, const Tensor& g, const Tensor& mask,
        const std::vector<int64_t>& off, int64_t si, int64_t sj) {
  Run r{empty({s.BH, s.Tq, s.Dv}), empty({s.BH, s.Tq}), empty(q.shape()), empty(k.shape()), empty(v.shape())};
  cpu::AttnMask<float> m;
  if (mask.defined()) {
    if (mask.dtype() == DType::boolean) m.keep = mask.data<bool>();
    else m.add = mask.data<float>();
    m.bh_offset = off.data();
    m.si = si;
    m.sj = sj;
  }
  auto fwd = Fused ? cpu::flash_attention_forward<float> : ref::attention_forward<float>;
  auto bwd = Fused ? cpu::flash_attention_backward<float> : ref::attention_backward<float>;
  fwd(s, q.data<float>(), k.data<float>(), v.data<float>(), m, r.out.data<float>(), r.lse.data<float>());
  bwd(s, q.data<float>(), k.data<float>(), v.data<float>(), m, r.out.data<float>(), r.lse.data<float>(),
      g.data<float>(), r.dq.data<float>(), r.dk.data<float>(), r.dv.data<float>());
  return r;
}

void compare(const cpu::AttnShape& s, int mask_kind) {
  manual_seed(s.BH * 1000 + s.Tq * 10 + s.Tk);
  Tensor q = randn({s.BH, s.Tq, s.D}), k = randn({s.BH, s.Tk, s.D}), v = randn({s.BH, s.Tk, s.Dv});
  Tensor g = randn({s.BH, s.Tq, s.Dv});
  Tensor mask;
  std::vector<int64_t> off(s.BH, 0);
  int64_t si = 0, sj = 1;
  if (mask_kind == 1) {  // one (Tk) key-padding row per bh, broadcast over query rows
    mask = rand({s.BH, s.Tk}) > 0.25;
    for (int64_t b = 0; b < s.BH; ++b) off[b] = b * s.Tk;
  } else if (mask_kind == 2) {  // a full float mask shared by all bh
    mask = randn({s.Tq, s.Tk});
    si = s.Tk;
  } else if (mask_kind == 3) {  // bool, rows 0 and 2 fully masked
    mask = rand({s.Tq, s.Tk}) > 0.5;
    mask.narrow(0, 0, 1).fill_(0.0);
    if (s.Tq > 2) mask.narrow(0, 2, 1).fill_(0.0);
    si = s.Tk;
  }
  Run a = run<true>(s, q, k, v, g, mask, off, si, sj);
  Run b = run<false>(s, q, k, v, g, mask, off, si, sj);
  const double tol = 2e-5;
  EXPECT_TRUE(test::parity_close(a.out, b.out, tol)) << "out";
  EXPECT_TRUE(test::parity_close(a.lse.masked_fill(a.lse == -INFINITY, -1e9), b.lse.masked_fill(b.lse == -INFINITY, -1e9), tol))
      << "lse";
  EXPECT_TRUE(test::parity_close(a.dq, b.dq, tol)) << "dq";
  EXPECT_TRUE(test::parity_close(a.dk, b.dk, tol)) << "dk";
  EXPECT_TRUE(test::parity_close(a.dv, b.dv, tol)) << "dv";
  if (mask_kind == 3) {  // fully masked rows: zero output, zero dq, lse = -inf
    EXPECT_EQ(a.out.select(1, 0).abs().sum().item(), 0.0);
    EXPECT_EQ(a.dq.select(1, 0).abs().sum().item(), 0.0);
    EXPECT_TRUE(std::isinf(a.lse.select(1, 0).max().item()));
  }
}

}  // namespace

TEST(AttentionReference, FusedMatchesReference) {
  const std::vector<cpu::AttnShape> shapes = {
      {3, 7, 7, 8, 8, 0.35, false},       {3, 7, 7, 8, 8, 0.35, true},       {2, 65, 65, 16, 16, 0.25, true},
      {2, 33, 130, 32, 24, 0.2, false},   {2, 33, 130, 32, 24, 0.2, true},  {4, 1, 37, 16, 16, 0.25, false},
      {2, 100, 3, 8, 5, 0.5, true},       {1, 129, 129, 64, 64, 0.125, true}, {2, 64, 128, 64, 64, 0.125, false},
      // Decode steps (one query row) at head sizes the register-resident kernel takes (32, 64, 128), and one
      // it leaves to the generic loop (48).
      {3, 1, 130, 64, 64, 0.125, false},  {2, 1, 70, 32, 32, 0.2, false},   {2, 1, 65, 128, 128, 0.1, false},
      {2, 1, 40, 48, 48, 0.15, false},
  };
  for (size_t i = 0; i < shapes.size(); ++i)
    for (int mk = 0; mk < 4; ++mk) {
      SCOPED_TRACE(::testing::Message() << "shape " << i << " mask " << mk);
      compare(shapes[i], mk);
    }
}

// A one-key tile with everything else hidden: the online softmax's first tile is its only one.
TEST(AttentionReference, DecodeStepSingleKey) {
  compare({5, 1, 1, 4, 3, 1.0, false}, 0);
  compare({5, 1, 1, 4, 3, 1.0, true}, 0);
}

// A KV cache's first Tk rows of a (B, H, max_len, D) buffer are read in place when no graph is built; the
// result must equal attention over packed copies (and a transposed, non-uniform view must still work).
TEST(AttentionReference, StridedCacheViewsMatchPackedCopies) {
  loom::manual_seed(3);
  loom::NoGradGuard ng;
  for (int64_t H : {1, 3}) {
    loom::Tensor q = loom::randn({2, H, 1, 8});
    loom::Tensor kc = loom::randn({2, H, 20, 8}), vc = loom::randn({2, H, 20, 6});
    loom::Tensor k = kc.narrow(2, 0, 13), v = vc.narrow(2, 0, 13);
    loom::Tensor ours = loom::fused_attention(q, k, v);
    loom::Tensor packed = loom::fused_attention(q, k.contiguous(), v.contiguous());
    EXPECT_EQ(ours.tolist(), packed.tolist()) << "H=" << H;
  }
  loom::Tensor q = loom::randn({3, 2, 4, 8}), k = loom::randn({2, 3, 5, 8}).transpose(0, 1), v = loom::randn({3, 2, 5, 8});
  EXPECT_EQ(loom::fused_attention(q, k, v).tolist(), loom::fused_attention(q, k.contiguous(), v).tolist());
}

// slot_attention (a continuous-batching decode step): row i reads the first lengths[i] keys of slot rows[i]
// in place, slots out of order and of lengths below, at and past one 64-key tile. Each row must match the
// plain reference over a packed copy of its slice, and equal exactly what the fused kernel gives that slice
// alone (batched and alone are the same computation).
TEST(AttentionReference, SlotAttentionReadsEachRowsOwnSlot) {
  loom::manual_seed(5);
  loom::NoGradGuard ng;
  const int64_t S = 5, H = 3, L = 150, D = 16;
  loom::Tensor kc = loom::randn({S, H, L, D}), vc = loom::randn({S, H, L, D});
  const std::vector<int64_t> rows = {3, 0, 4, 1}, lens = {1, 64, 130, 17};
  loom::Tensor q = loom::randn({4, H, 1, D});
  loom::Tensor got = loom::slot_attention(q, kc, vc, rows, lens);
  ASSERT_EQ(got.shape(), q.shape());
  for (size_t i = 0; i < rows.size(); ++i) {
    const int64_t r = rows[i], n = lens[i];
    loom::Tensor qi = q.narrow(0, int64_t(i), 1).contiguous();
    loom::Tensor ki = kc.narrow(0, r, 1).narrow(2, 0, n).contiguous(), vi = vc.narrow(0, r, 1).narrow(2, 0, n).contiguous();
    loom::Tensor want = loom::empty({H, 1, D}), lse = loom::empty({H, 1});
    ref::attention_forward<float>({H, 1, n, D, D, 1.0 / std::sqrt(double(D)), false}, qi.data<float>(), ki.data<float>(),
                                  vi.data<float>(), {}, want.data<float>(), lse.data<float>());
    loom::Tensor gi = got.narrow(0, int64_t(i), 1).contiguous();
    EXPECT_TRUE(test::parity_close(gi.reshape({H, 1, D}), want, 2e-5)) << "row " << i;
    EXPECT_EQ(gi.tolist(), loom::fused_attention(qi, ki, vi).tolist()) << "row " << i << ": batched differs from alone";
  }
  // Bad rows, lengths and shapes are errors naming the problem, never reads outside the caches.
  const std::vector<int64_t> one = {0};
  loom::Tensor q1 = q.narrow(0, 0, 1);
  EXPECT_THROW(loom::slot_attention(q1, kc, vc, std::vector<int64_t>{5}, one), loom::Error);
  EXPECT_THROW(loom::slot_attention(q1, kc, vc, one, std::vector<int64_t>{0}), loom::Error);
  EXPECT_THROW(loom::slot_attention(q1, kc, vc, one, std::vector<int64_t>{L + 1}), loom::Error);
  EXPECT_THROW(loom::slot_attention(q, kc, vc, one, one), loom::Error);
  EXPECT_THROW(loom::slot_attention(loom::randn({1, H, 2, D}), kc, vc, one, std::vector<int64_t>{2}), loom::Error);
  EXPECT_THROW(loom::slot_attention(q1, kc, vc.narrow(2, 0, 10), one, std::vector<int64_t>{2}), loom::Error);
}
