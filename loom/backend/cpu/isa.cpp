// The run-time ISA check behind the dispatched kernels (see isa.h). CPUID comes through
// __builtin_cpu_supports, which also requires the OS to save the ZMM state (XCR0), so a kernel or hypervisor
// that disables AVX-512 reads as "lacks". Both the CPU probe and LOOM_ISA are read once; the test hook is a
// relaxed atomic, so a kernel's check costs one load and one branch.
#include "loom/backend/cpu/isa.h"

#include <atomic>
#include <cstdlib>

#include "loom/core/error.h"

namespace loom::cpu {

namespace {

struct Probe {
  std::string missing;       // the first feature the AVX-512 kernels need that the CPU lacks, or ""
  std::string missing_vnni;  // the same for the VNNI kernels
  std::string missing_bf16;  // the same for the AVX512-BF16 kernels
};

Probe probe_cpu() {
  Probe p;
#if defined(LOOM_X86_KERNELS)
  __builtin_cpu_init();
  // The features LOOM_TARGET_AVX512 enables, in the order they are reported.
  const struct { const char* name; bool have; } need[] = {
      {"avx2", bool(__builtin_cpu_supports("avx2"))},         {"fma", bool(__builtin_cpu_supports("fma"))},
      {"avx512f", bool(__builtin_cpu_supports("avx512f"))},   {"avx512bw", bool(__builtin_cpu_supports("avx512bw"))},
      {"avx512dq", bool(__builtin_cpu_supports("avx512dq"))}, {"avx512vl", bool(__builtin_cpu_supports("avx512vl"))},
      {"f16c", bool(__builtin_cpu_supports("f16c"))}};
  for (const auto& f : need)
    if (!f.have && p.missing.empty()) p.missing = f.name;
  p.missing_vnni = !p.missing.empty() ? p.missing : __builtin_cpu_supports("avx512vnni") ? "" : "avx512vnni";
  p.missing_bf16 = !p.missing.empty() ? p.missing : __builtin_cpu_supports("avx512bf16") ? "" : "avx512bf16";
#else
  p.missing = p.missing_vnni = p.missing_bf16 = "an x86-64 CPU";
#endif
  return p;
}

const Probe& probe() {
  static const Probe p = probe_cpu();
  return p;
}

// LOOM_ISA, read once (a bad value throws on every call until the variable is fixed).
bool env_baseline() {
  static const bool baseline = isa_env_is_baseline(std::getenv("LOOM_ISA"));
  return baseline;
}

std::atomic<bool> g_forced_baseline{false};

}  // namespace

bool isa_env_is_baseline(const char* value) {
  const std::string s = value ? value : "";
  LOOM_CHECK(s.empty() || s == "auto" || s == "baseline", "LOOM_ISA=", s,
             ": expected 'auto' (the widest kernels this CPU runs) or 'baseline' (the portable fallback kernels)");
  return s == "baseline";
}

bool has_avx512() {
  static const bool on = probe().missing.empty() && !env_baseline();
  return on && !g_forced_baseline.load(std::memory_order_relaxed);
}

bool has_avx512_vnni() {
  static const bool on = probe().missing_vnni.empty() && !env_baseline();
  return on && !g_forced_baseline.load(std::memory_order_relaxed);
}

bool has_avx512_bf16() {
  static const bool on = probe().missing_bf16.empty() && !env_baseline();
  return on && !g_forced_baseline.load(std::memory_order_relaxed);
}

void force_baseline_for_testing(bool on) { g_forced_baseline.store(on, std::memory_order_relaxed); }

std::string isa_reason(bool vnni) {
  const std::string& missing = vnni ? probe().missing_vnni : probe().missing;
  if (!missing.empty()) return "CPU lacks " + missing;
  if (env_baseline()) return "LOOM_ISA=baseline";
  if (g_forced_baseline.load(std::memory_order_relaxed)) return "forced baseline (test hook)";
  return vnni ? "CPU has avx512f,avx512bw,avx512dq,avx512vl,avx512vnni" : "CPU has avx512f,avx512bw,avx512dq,avx512vl";
}

}  // namespace loom::cpu
