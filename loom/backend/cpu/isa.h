// Run-time choice of the AVX-512 kernels. Every x86-64 build (native or portable) compiles the AVX-512 code
// paths inside functions that carry LOOM_TARGET_AVX512 (or _VNNI); the caller asks once per kernel call
// whether this CPU runs them, and otherwise takes the plain loops:
//   LOOM_TARGET_AVX512 static void row_avx512(...) { ... _mm512_... }
//   if (cpu::has_avx512()) row_avx512(...); else row_plain(...);
// Target attributes rather than per-file -mavx512f flags: an inline function or template instantiated in a
// file compiled with wider flags can be the copy the linker keeps for baseline callers (ODR/COMDAT), while
// an attribute widens only the function that carries it. Helpers that use _mm512 intrinsics need the
// attribute themselves (a lambda's operator() does not inherit it, so they are static functions), and the
// names of such functions contain "avx512" or "vnni": scripts/check_portable.sh allows wide registers only there.
#pragma once
#include <string>

#if defined(__x86_64__)
#define LOOM_X86_KERNELS 1
#define LOOM_TARGET_AVX512 __attribute__((target("avx512f,avx512bw,avx512dq,avx512vl,avx2,fma,f16c")))
#define LOOM_TARGET_AVX512_VNNI \
  __attribute__((target("avx512f,avx512bw,avx512dq,avx512vl,avx512vnni,avx2,fma,f16c")))
#define LOOM_TARGET_AVX512_BF16 \
  __attribute__((target("avx512f,avx512bw,avx512dq,avx512vl,avx512bf16,avx2,fma,f16c")))
#endif

namespace loom::cpu {

// Whether the AVX-512 kernels (avx512f/bw/dq/vl, fma, f16c) run here: CPUID (with the OS's ZMM state) asked
// once, then LOOM_ISA=baseline (read once; any value other than "auto" or "baseline" is a loom::Error) and
// the test hook turn them off. A cached bool: callers check it once per kernel call.
bool has_avx512();
// has_avx512() and avx512vnni (the int8 and Q8_0/Q4_0 dot products).
bool has_avx512_vnni();
// has_avx512() and avx512bf16 (VDPBF16PS: the bf16 GEMM where the CPU has no AMX, e.g. AMD Zen 4/5).
bool has_avx512_bf16();
// Tests only: true makes has_avx512() and has_avx512_vnni() false until set back, so one test binary
// runs both paths of every dispatched kernel.
void force_baseline_for_testing(bool on);
// Parses a LOOM_ISA value (null: unset): true for "baseline", false for unset, "" or "auto"; anything else
// is a loom::Error naming the variable and the values it takes.
bool isa_env_is_baseline(const char* value);
// Why has_avx512() (vnni = false) or has_avx512_vnni() (vnni = true) says what it says, for `loom info`:
// "CPU has avx512f,avx512bw,avx512dq,avx512vl", "LOOM_ISA=baseline", "CPU lacks avx512bw", ...
std::string isa_reason(bool vnni);

}  // namespace loom::cpu
