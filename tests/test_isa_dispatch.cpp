// The kernels that choose their AVX-512 or plain path at run time (backend/cpu/isa.h), each run both ways in
// one process (the test hook cpu::force_baseline_for_testing) and held to the plain reference loops: conv
// (Winograd, direct kernel, masked im2col rows, col2im gather), 2x2 max pooling, flash attention (gathered key tiles,
// register-resident decode rows), skinny_gemm_bt, the Q8_0/Q4_0 kernels and the int8 GEMM. Uses only loom's
// core and backend layers, so scripts/check_portable.sh also builds it against a LOOM_NATIVE=OFF libloom_backend.
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <cstring>
#include <functional>
#include <random>
#include <string>
#include <vector>

#include "loom/backend/cpu/conv_direct.h"
#include "loom/backend/cpu/cpu_backend.h"
#include "loom/backend/cpu/flash_attention.h"
#include "loom/backend/cpu/int8_gemm.h"
#include "loom/backend/cpu/isa.h"
#include "loom/backend/cpu/max_pool_2x2.h"
#include "loom/backend/cpu/qgemm.h"
#include "loom/backend/cpu/reference.h"
#include "loom/backend/cpu/reference_attention.h"
#include "loom/backend/cpu/reference_conv.h"
#include "loom/backend/cpu/skinny_gemm.h"
#include "loom/core/error.h"
#include "loom/core/tensor.h"

using namespace loom;

namespace {

template <class T = float>
std::vector<T> random_values(int64_t n, uint32_t seed, double lo = -1, double hi = 1) {
  std::mt19937 gen(seed);
  std::uniform_real_distribution<double> u(lo, hi);
  std::vector<T> v(static_cast<size_t>(std::max<int64_t>(n, 0)));
  for (T& x : v) x = T(u(gen));
  return v;
}

template <class T>
Tensor tensor_of(const Shape& s, const std::vector<T>& v) {
  Tensor t = make_tensor(s, dtype_of<T>::value);
  std::copy(v.begin(), v.end(), t.data<T>());
  return t;
}

template <class T>
void expect_close(const T* got, const T* want, int64_t n, double tol, const std::string& what) {
  for (int64_t i = 0; i < n; ++i)
    ASSERT_NEAR(double(got[i]), double(want[i]), tol * (1.0 + std::abs(double(want[i])))) << what << " at " << i;
}

// The hook is process-wide: put it back even when an assertion returns early.
struct ForceBaseline {
  explicit ForceBaseline(bool on) { cpu::force_baseline_for_testing(on); }
  ~ForceBaseline() { cpu::force_baseline_for_testing(false); }
};

// check(wide) on the AVX-512 path (where this CPU has it; else a visible "skipped" line) and on the forced
// baseline path. vnni: the kernel needs avx512vnni as well.
void both_paths(const char* kernel, bool vnni, const std::function<void(bool wide)>& check) {
  const auto available = [vnni] { return vnni ? cpu::has_avx512_vnni() : cpu::has_avx512(); };
  if (available()) {
    SCOPED_TRACE(std::string(kernel) + ", AVX-512 path");
    check(true);
  } else {
    std::printf("skipped: %s on the AVX-512 path (%s)\n", kernel, cpu::isa_reason(vnni).c_str());
  }
  ForceBaseline forced(true);
  ASSERT_FALSE(available());
  SCOPED_TRACE(std::string(kernel) + ", baseline path");
  check(false);
}

ConvGeom conv_geom(int64_t N, int64_t C, int64_t H, int64_t W, int64_t OC, int64_t K, int64_t stride, int64_t pad,
                   int64_t groups = 1) {
  ConvGeom g{.N = N, .C = C, .H = H, .W = W, .OC = OC, .KH = K, .KW = K, .OH = 0, .OW = 0};
  g.sh = g.sw = stride;
  g.ph = g.pw = pad;
  g.groups = groups;
  g.OH = (H + 2 * pad - K) / stride + 1;
  g.OW = (W + 2 * pad - K) / stride + 1;
  return g;
}

// conv2d forward and all three gradients through the CPU backend against reference_conv.h.
template <class T>
void conv_matches_reference(const ConvGeom& g, uint32_t seed) {
  const int64_t Cg = g.C / g.groups, nx = g.N * g.C * g.H * g.W, nw = g.OC * Cg * g.KH * g.KW;
  const int64_t ny = g.N * g.OC * g.OH * g.OW;
  const auto x = random_values<T>(nx, seed), w = random_values<T>(nw, seed + 1), b = random_values<T>(g.OC, seed + 2);
  const auto gy = random_values<T>(ny, seed + 3);
  cpu::CpuBackend be;
  Tensor tx = tensor_of({g.N, g.C, g.H, g.W}, x), tw = tensor_of({g.OC, Cg, g.KH, g.KW}, w), tb = tensor_of({g.OC}, b);
  Tensor ty = make_tensor({g.N, g.OC, g.OH, g.OW}, dtype_of<T>::value), tg = tensor_of({g.N, g.OC, g.OH, g.OW}, gy);
  be.conv2d(ty, tx, tw, &tb, g);
  std::vector<T> y(static_cast<size_t>(ny)), dx(static_cast<size_t>(nx)), dw(static_cast<size_t>(nw));
  std::vector<T> db(static_cast<size_t>(g.OC));
  ref::conv2d_forward(y.data(), x.data(), w.data(), b.data(), g);
  const double tol = sizeof(T) == 4 ? 1e-5 : 1e-12;
  expect_close(ty.data<T>(), y.data(), ny, tol, "conv2d y");
  Tensor tdx = make_tensor(tx.shape(), tx.dtype()), tdw = make_tensor(tw.shape(), tw.dtype());
  Tensor tdb = make_tensor(tb.shape(), tb.dtype());
  be.conv2d_backward(&tdx, &tdw, &tdb, tg, tx, tw, g);
  ref::conv2d_backward(dx.data(), dw.data(), db.data(), gy.data(), x.data(), w.data(), g);
  expect_close(tdx.data<T>(), dx.data(), nx, tol, "conv2d dx");
  expect_close(tdw.data<T>(), dw.data(), nw, tol * 10, "conv2d dw");
  expect_close(tdb.data<T>(), db.data(), g.OC, tol * 10, "conv2d db");
}

}  // namespace

TEST(IsaDispatch, HookAndEnvironmentRule) {
  const bool before = cpu::has_avx512();
  {
    ForceBaseline forced(true);
    EXPECT_FALSE(cpu::has_avx512());
    EXPECT_FALSE(cpu::has_avx512_vnni());
    if (before) EXPECT_EQ(cpu::isa_reason(false), "forced baseline (test hook)");
    else EXPECT_FALSE(cpu::isa_reason(false).empty());
  }
  EXPECT_EQ(cpu::has_avx512(), before);
  // VNNI kernels need everything the AVX-512 ones do.
  if (cpu::has_avx512_vnni()) {
    EXPECT_TRUE(cpu::has_avx512());
  }
  EXPECT_TRUE(cpu::isa_env_is_baseline("baseline"));
  EXPECT_FALSE(cpu::isa_env_is_baseline(nullptr));
  EXPECT_FALSE(cpu::isa_env_is_baseline(""));
  EXPECT_FALSE(cpu::isa_env_is_baseline("auto"));
  try {
    cpu::isa_env_is_baseline("avx2");
    FAIL() << "LOOM_ISA=avx2 was accepted";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("LOOM_ISA=avx2"), std::string::npos) << e.what();
    EXPECT_NE(std::string(e.what()).find("baseline"), std::string::npos) << e.what();
  }
}

TEST(IsaDispatch, ConvBothPaths) {
  both_paths("conv", false, [](bool wide) {
    // Stride 1, 3x3 on a small plane: the direct kernel where AVX-512 runs, im2col + GEMM otherwise.
    const ConvGeom direct = conv_geom(3, 4, 9, 11, 10, 3, 1, 1);
    EXPECT_EQ(cpu::conv_direct_applies(direct), wide);
    conv_matches_reference<float>(direct, 1);
    // Stride 1 but refused by the direct kernel (groups; 7x7 on 9x9): im2col rows under a mask, col2im gathers.
    conv_matches_reference<float>(conv_geom(2, 4, 7, 11, 6, 3, 1, 2, 2), 2);
    conv_matches_reference<float>(conv_geom(2, 2, 9, 9, 4, 7, 1, 0), 3);
    // float64 rows of up to 8 lanes, and a stride-2 layer (plain rows on both paths).
    conv_matches_reference<double>(conv_geom(2, 3, 6, 7, 5, 3, 1, 1), 4);
    conv_matches_reference<float>(conv_geom(3, 3, 12, 13, 4, 3, 2, 1), 5);
    // Enough samples for the per-thread split.
    conv_matches_reference<float>(conv_geom(9, 8, 13, 13, 16, 3, 1, 0), 6);
    // 3x3 with 16 -> 32 channels: Winograd forward and input gradient where AVX-512 runs (conv_winograd.cpp).
    conv_matches_reference<float>(conv_geom(2, 16, 10, 10, 32, 3, 1, 1), 7);
  });
}

TEST(IsaDispatch, MaxPool2x2BothPaths) {
  both_paths("max_pool 2x2", false, [](bool wide) {
    for (auto [H, W] : {std::pair<int64_t, int64_t>{26, 26}, {7, 35}, {2, 2}, {5, 66}}) {
      const PoolGeom g{.N = 2, .C = 3, .H = H, .W = W, .OH = H / 2, .OW = W / 2, .KH = 2, .KW = 2, .sh = 2, .sw = 2};
      const int64_t nx = g.N * g.C * H * W, ny = g.N * g.C * g.OH * g.OW;
      auto x = random_values(nx, uint32_t(H * 100 + W));
      x[3] = std::nanf("");  // PyTorch's NaN rule
      std::vector<float> y(static_cast<size_t>(ny)), y_ref(static_cast<size_t>(ny));
      std::vector<float> dx(static_cast<size_t>(nx), -1.0f), dx_ref(static_cast<size_t>(nx));
      std::vector<int64_t> idx(static_cast<size_t>(ny)), idx_ref(static_cast<size_t>(ny));
      const auto gy = random_values(ny, 7);
      ref::max_pool2d_forward(y_ref.data(), idx_ref.data(), x.data(), g);
      ref::max_pool2d_backward(dx_ref.data(), gy.data(), idx_ref.data(), g);
      // The fast kernel takes the shape exactly when AVX-512 runs; the backend gives the same answer either way.
      ASSERT_EQ(cpu::max_pool2d_2x2(y.data(), idx.data(), x.data(), g), wide);
      ASSERT_EQ(cpu::max_pool2d_2x2_backward(dx.data(), gy.data(), idx_ref.data(), g), wide);
      cpu::CpuBackend be;
      Tensor tx = tensor_of({g.N, g.C, H, W}, x), ty = make_tensor({g.N, g.C, g.OH, g.OW}, DType::f32);
      Tensor ti = make_tensor(ty.shape(), DType::i64), tdx = make_tensor(tx.shape(), DType::f32);
      be.max_pool2d(ty, ti, tx, g);
      be.max_pool2d_backward(tdx, tensor_of(ty.shape(), gy), ti, g);
      for (int64_t i = 0; i < ny; ++i) {
        ASSERT_EQ(ti.data<int64_t>()[i], idx_ref[static_cast<size_t>(i)]) << "index " << i;
        const float a = ty.data<float>()[i], r = y_ref[static_cast<size_t>(i)];
        ASSERT_TRUE(a == r || (std::isnan(a) && std::isnan(r))) << "value " << i;
      }
      expect_close(tdx.data<float>(), dx_ref.data(), nx, 0, "max_pool dx");
      if (wide) {
        EXPECT_EQ(idx, idx_ref);
        expect_close(dx.data(), dx_ref.data(), nx, 0, "max_pool2d_2x2_backward dx");
      }
    }
  });
}

TEST(IsaDispatch, FlashAttentionBothPaths) {
  both_paths("flash attention", false, [](bool) {
    // Full 64-key tiles (gathered transposes), a ragged last tile, causal and not; decode rows at head sizes the
    // register kernel takes (32, 64) and one it leaves to the loop (48).
    const std::vector<AttnShape> shapes = {{2, 70, 130, 32, 32, 0.2, true},  {1, 64, 64, 64, 64, 0.125, false},
                                           {3, 1, 130, 64, 64, 0.125, false}, {2, 1, 70, 32, 32, 0.2, false},
                                           {2, 1, 40, 48, 48, 0.15, false}};
    for (const AttnShape& s : shapes) {
      SCOPED_TRACE(::testing::Message() << "BH " << s.BH << " Tq " << s.Tq << " Tk " << s.Tk << " D " << s.D);
      const auto q = random_values(s.BH * s.Tq * s.D, 1), k = random_values(s.BH * s.Tk * s.D, 2);
      const auto v = random_values(s.BH * s.Tk * s.Dv, 3), g = random_values(s.BH * s.Tq * s.Dv, 4);
      const int64_t no = s.BH * s.Tq * s.Dv, nl = s.BH * s.Tq, nq = s.BH * s.Tq * s.D, nk = s.BH * s.Tk * s.D;
      const int64_t nv = s.BH * s.Tk * s.Dv;
      std::vector<float> out(no), lse(nl), out_r(no), lse_r(nl), dq(nq), dk(nk), dv(nv), dq_r(nq), dk_r(nk), dv_r(nv);
      const cpu::AttnMask<float> m;
      cpu::flash_attention_forward<float>(s, q.data(), k.data(), v.data(), m, out.data(), lse.data());
      ref::attention_forward<float>(s, q.data(), k.data(), v.data(), m, out_r.data(), lse_r.data());
      expect_close(out.data(), out_r.data(), no, 2e-5, "out");
      expect_close(lse.data(), lse_r.data(), nl, 2e-5, "lse");
      if (s.Tq == 1) continue;  // backward is the training path; decode rows are forward only
      cpu::flash_attention_backward<float>(s, q.data(), k.data(), v.data(), m, out.data(), lse.data(), g.data(),
                                           dq.data(), dk.data(), dv.data());
      ref::attention_backward<float>(s, q.data(), k.data(), v.data(), m, out_r.data(), lse_r.data(), g.data(),
                                     dq_r.data(), dk_r.data(), dv_r.data());
      expect_close(dq.data(), dq_r.data(), nq, 2e-5, "dq");
      expect_close(dk.data(), dk_r.data(), nk, 2e-5, "dk");
      expect_close(dv.data(), dv_r.data(), nv, 2e-5, "dv");
    }
  });
}

TEST(IsaDispatch, SkinnyGemmBothPaths) {
  both_paths("skinny_gemm_bt", false, [](bool) {
    for (int64_t M : {1, 3, 8, 9, 16})
      for (auto [N, K] : {std::pair<int64_t, int64_t>{7, 15}, {33, 100}, {515, 520}}) {
        const int64_t lda = K + 1, ldw = K + 3, ldc = N + 2;
        const auto A = random_values(M * lda, 1), W = random_values(N * ldw, 2), C = random_values(M * ldc, 3);
        std::vector<float> got = C, want = C;
        cpu::skinny_gemm_bt(M, N, K, 0.5f, A.data(), lda, W.data(), ldw, -1.5f, got.data(), ldc);
        ref::gemm<float>(false, true, M, N, K, 0.5f, A.data(), lda, W.data(), ldw, -1.5f, want.data(), ldc);
        expect_close(got.data(), want.data(), M * ldc, 1e-5 * std::sqrt(double(K)),
                     "M=" + std::to_string(M) + " N=" + std::to_string(N) + " K=" + std::to_string(K));
      }
  });
}

TEST(IsaDispatch, QuantizedBlocksBothPaths) {
  both_paths("Q8_0/Q4_0 kernels", true, [](bool) {
    using namespace loom::quant;
    const int64_t M = 9, N = 13, K = 96;
    auto x = random_values(M * K, 11);
    x[1] = 127.0f, x[2] = 2.5f;  // with amax 127 the scale is 1: a tie roundf and round-to-even disagree on
    std::vector<BlockQ8_0> fast(static_cast<size_t>(M * K / QK)), xq(static_cast<size_t>(M * K / QK));
    quantize_rows_q8_0(x.data(), fast.data(), M, K);
    quantize_row_q8_0(x.data(), xq.data(), M * K);
    EXPECT_EQ(std::memcmp(fast.data(), xq.data(), fast.size() * sizeof(BlockQ8_0)), 0) << "quantize_rows_q8_0";
    const auto w = random_values(N * K, 12), bias = random_values(N, 13);
    for (QuantFormat f : {QuantFormat::q8_0, QuantFormat::q4_0}) {
      std::vector<uint8_t> wq(N * row_bytes(f, K));
      for (int64_t n = 0; n < N; ++n) quantize_row(f, w.data() + n * K, wq.data() + n * row_bytes(f, K), K);
      std::vector<float> y(static_cast<size_t>(M * N)), y_ref(static_cast<size_t>(M * N));
      qgemm(f, wq.data(), xq.data(), bias.data(), y.data(), M, N, K);
      qgemm_ref(f, wq.data(), xq.data(), bias.data(), y_ref.data(), M, N, K);
      expect_close(y.data(), y_ref.data(), M * N, 1e-4, format_name(f));
      const float d = vec_dot(f, wq.data(), xq.data(), K);
      EXPECT_NEAR(d + bias[0], y_ref[0], 1e-4 * (1 + std::abs(y_ref[0]))) << "vec_dot";
    }
  });
}

TEST(IsaDispatch, Int8GemmBothPaths) {
  both_paths("int8 GEMM", true, [](bool wide) {
    using namespace loom::quant;
    EXPECT_EQ(int8_gemm_is_vnni(), wide);
    for (int64_t M : {3, 70})  // the row-by-row kernel (M < 8) and the packed panels
      for (int64_t K : {5, 64}) {
        const int64_t N = 7, B = 2;
        const auto x = random_values(B * M * K, uint32_t(M + K), -1.0, 3.0), wf = random_values(N * K, 2, -127, 127);
        const auto bias = random_values(N, 3), scale = random_values(N, 4, 0.01, 0.05);
        std::vector<int8_t> q(static_cast<size_t>(N * K));
        std::vector<int32_t> sums(static_cast<size_t>(N), 0);
        for (size_t i = 0; i < q.size(); ++i) {
          q[i] = int8_t(std::nearbyint(wf[i]));
          sums[i / size_t(K)] += q[i];
        }
        const Int8Weights w{q.data(), scale.data(), sums.data(), bias.data(), N};
        const Int8Params p = choose_int8_params(-1.0f, 3.0f);
        std::vector<float> y(static_cast<size_t>(B * M * N)), y_ref(static_cast<size_t>(B * M * N));
        int8_gemm_batched({y.data(), N, 1}, M * N, {x.data(), K, 1}, M * K, B, M, K, p, w);
        for (int64_t b = 0; b < B; ++b)
          int8_gemm_ref({y_ref.data() + b * M * N, N, 1}, {x.data() + b * M * K, K, 1}, M, K, p, w);
        expect_close(y.data(), y_ref.data(), B * M * N, 1e-5, "M=" + std::to_string(M) + " K=" + std::to_string(K));
      }
  });
}
