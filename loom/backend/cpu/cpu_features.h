// What the CPU kernels of this binary were compiled for, what this machine offers, and which kernel each
// family picks here (the `loom info` "kernels:" lines).
//   for (const auto& k : loom::cpu::kernel_choices()) std::cout << k.family << ": " << k.kernel << "\n";
//   if (!loom::cpu::compiled_isa_supported()) ...   // a native build copied to an older CPU
// Build modes (CMake LOOM_NATIVE): ON compiles everything with -march=native (fastest here, runs only on
// CPUs with this one's instruction sets); OFF compiles for baseline x86-64. In both, the hand-written
// AVX-512 kernels (conv, max_pool, attention, skinny_gemm, int8/Q8_0 GEMMs) carry their own target
// attribute and are chosen at run time by CPUID (isa.h), as is the AMX bf16 GEMM.
#pragma once
#include <string>
#include <vector>

namespace loom::cpu {

struct KernelChoice {
  std::string family;  // "gemm_bf16", "attention", ...
  std::string kernel;  // what runs on this machine
  std::string why;     // "run time: CPU has avx512f,...", "run time: LOOM_ISA=baseline", "compiled for x86-64", ...
};

// "avx512", "avx2" or "x86-64" (baseline): the widest instruction set the compiler was allowed to use.
const char* compiled_isa();
// Whether this CPU has the instruction sets compiled_isa() assumes (CPUID via __builtin_cpu_supports).
bool compiled_isa_supported();
// One line per kernel family whose code differs by instruction set.
std::vector<KernelChoice> kernel_choices();

}  // namespace loom::cpu
