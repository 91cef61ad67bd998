// Autocast state: one thread-local dtype, saved and restored by guards (see autocast.h).
#include "loom/ops/autocast.h"

#include <string>

#include "loom/core/error.h"

namespace loom {

namespace {
thread_local DType g_autocast = DType::f32;
}

DType autocast_dtype() { return g_autocast; }

AutocastGuard::AutocastGuard(DType dtype) : prev_(g_autocast) {
  LOOM_CHECK(dtype == DType::f32 || dtype == DType::bf16, "AutocastGuard: products can run in bfloat16 (on) or ",
             "float32 (off), got ", dtype, "; float16 autocast is not implemented on the CPU");
  g_autocast = dtype;
}

AutocastGuard::~AutocastGuard() { g_autocast = prev_; }

DType parse_precision(const char* name) {
  const std::string s = name ? name : "";
  if (s == "bf16" || s == "bfloat16") return DType::bf16;
  if (s == "f32" || s == "fp32" || s == "float32") return DType::f32;
  LOOM_FAIL("precision: expected bf16 or f32, got '", s, "'");
}

}  // namespace loom
