// Reports which kernels this build uses (see cpu_features.h). compiled_isa() follows the compiler's
// predefined macros (__AVX512F__, __AVX2__), set by -march; the hand-written AVX-512 kernels are compiled
// into every x86-64 build and chosen at run time (isa.h), and gemm_bf16 probes CPUID and the Linux tile
// permission itself.
#include "loom/backend/cpu/cpu_features.h"

#include "loom/backend/cpu/gemm_bf16.h"
#include "loom/backend/cpu/isa.h"

namespace loom::cpu {

const char* compiled_isa() {
#if defined(__AVX512F__)
  return "avx512";
#elif defined(__AVX2__)
  return "avx2";
#else
  return "x86-64";
#endif
}

bool compiled_isa_supported() {
#if defined(__x86_64__)
  __builtin_cpu_init();
#if defined(__AVX512F__)
  if (!__builtin_cpu_supports("avx512f")) return false;
#endif
#if defined(__AVX2__)
  if (!__builtin_cpu_supports("avx2")) return false;
#endif
#if defined(__FMA__)
  if (!__builtin_cpu_supports("fma")) return false;
#endif
#endif
  return true;
}

std::vector<KernelChoice> kernel_choices() {
  const std::string isa = compiled_isa();
  const std::string vec = isa == "avx512" ? "512-bit vectors" : isa == "avx2" ? "256-bit vectors" : "128-bit (SSE2) vectors";
  const bool wide = has_avx512(), vnni = has_avx512_vnni();
  const std::string why = "run time: " + isa_reason(false), why_vnni = "run time: " + isa_reason(true);
  std::vector<KernelChoice> out;
  out.push_back({"gemm_bf16", bf16_kernel_name(bf16_kernel()),
                 "chosen at run time (CPUID amx_bf16 + Linux tile permission, else avx512bf16; LOOM_BF16_KERNEL=convert forces sgemm)"});
  out.push_back({"gemm", wide ? "loom's AVX-512 sgemm (12x32 tiles, packed panels); OpenBLAS dgemm for float64"
                              : "OpenBLAS sgemm/dgemm (OpenBLAS picks its kernel table for this CPU)",
                 why});
  out.push_back({"skinny_gemm", wide ? "AVX-512 row dots (2..16 rows x W^T)" : "plain loops (2..16 rows x W^T)", why});
  out.push_back({"attention", wide ? "tiled, AVX-512 gathers for key tiles, decode rows in registers"
                                   : "tiled, scalar key-tile transposes", why});
  out.push_back({"conv",
                 wide ? "Winograd F(2x2,3x3) AVX-512 for 3x3 stride-1 f32 with enough channels (forward; input gradient "
                        "where measured faster), direct AVX-512 forward for other stride-1 f32 on small planes, else "
                        "im2col + GEMM (masked im2col rows)"
                      : "im2col + GEMM, plain im2col rows",
                 why});
  out.push_back({"max_pool", wide ? "AVX-512 kernel for 2x2 / stride 2 f32, else direct loops" : "direct loops", why});
  out.push_back({"int8_gemm", vnni ? "AVX-512 VNNI vpdpbusd" : "reference loops", why_vnni});
  out.push_back({"qgemm (Q8_0/Q4_0)", vnni ? "AVX-512 VNNI vpdpbusd" : "reference loops", why_vnni});
  out.push_back({"elementwise/norms/rnn", "GCC-vectorised loops, " + vec, "compiled for " + isa});
  return out;
}

}  // namespace loom::cpu
