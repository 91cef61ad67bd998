// cpu_features: what the kernels were compiled for and which kernel each family picks (loom info), including
// the AVX-512 kernels chosen at run time (isa.h) and the reason given for each choice.
#include <gtest/gtest.h>

#include <string>

#include "loom/backend/cpu/cpu_features.h"
#include "loom/backend/cpu/gemm_bf16.h"
#include "loom/backend/cpu/isa.h"

using namespace loom::cpu;

TEST(CpuFeatures, CompiledIsaFollowsTheCompilerFlags) {
  const std::string isa = compiled_isa();
#if defined(__AVX512F__)
  EXPECT_EQ(isa, "avx512");
#elif defined(__AVX2__)
  EXPECT_EQ(isa, "avx2");
#else
  EXPECT_EQ(isa, "x86-64");
#endif
  // This test binary runs, so the machine has what it was compiled for.
  EXPECT_TRUE(compiled_isa_supported());
}

TEST(CpuFeatures, KernelChoicesNameTheRunTimeBf16Kernel) {
  bool saw_bf16 = false, saw_attention = false;
  for (const auto& k : kernel_choices()) {
    EXPECT_FALSE(k.kernel.empty()) << k.family;
    EXPECT_FALSE(k.why.empty()) << k.family;
    if (k.family == "gemm_bf16") {
      saw_bf16 = true;
      EXPECT_EQ(k.kernel, bf16_kernel_name(bf16_kernel()));
      if (k.kernel == "amx") {
        EXPECT_TRUE(amx_bf16_available());
      }
    }
    if (k.family == "attention") saw_attention = true;
  }
  EXPECT_TRUE(saw_bf16);
  EXPECT_TRUE(saw_attention);
}

TEST(CpuFeatures, KernelChoicesFollowTheRunTimeCheck) {
  auto find = [](const char* family) {
    for (const auto& k : kernel_choices())
      if (k.family == family) return k;
    ADD_FAILURE() << "no kernel_choices() line for " << family;
    return KernelChoice{};
  };
  for (const char* family : {"conv", "max_pool", "attention", "skinny_gemm", "gemm"}) {
    const KernelChoice k = find(family);
    EXPECT_EQ(k.kernel.find("AVX-512") != std::string::npos, has_avx512()) << family << ": " << k.kernel;
    EXPECT_EQ(k.why, "run time: " + isa_reason(false)) << family;
  }
  for (const char* family : {"int8_gemm", "qgemm (Q8_0/Q4_0)"}) {
    const KernelChoice k = find(family);
    EXPECT_EQ(k.kernel.find("VNNI") != std::string::npos, has_avx512_vnni()) << family << ": " << k.kernel;
    EXPECT_EQ(k.why, "run time: " + isa_reason(true)) << family;
  }
  const bool wide = has_avx512();
  if (wide) {
    EXPECT_EQ(find("conv").why, "run time: CPU has avx512f,avx512bw,avx512dq,avx512vl");
  }
  force_baseline_for_testing(true);
  EXPECT_EQ(find("conv").kernel, "im2col + GEMM, plain im2col rows");
  EXPECT_EQ(find("int8_gemm").kernel, "reference loops");
  if (wide) {
    EXPECT_EQ(find("conv").why, "run time: forced baseline (test hook)");
  }
  force_baseline_for_testing(false);
}
