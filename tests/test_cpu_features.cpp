// cpu_features: what the kernels were compiled for and which kernel each family picks (loom info).
#include <gtest/gtest.h>

#include <string>

#include "loom/backend/cpu/cpu_features.h"
#include "loom/backend/cpu/gemm_bf16.h"

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
