// Autocast (mixed precision, like torch.autocast): while a guard is alive on this thread, mm / bmm / matmul /
// linear round their f32 operands to bf16 and multiply with f32 accumulation, returning f32.
//   { loom::AutocastGuard bf(DType::bf16); loss = criterion(model.forward(x), y); }   // products in bf16
//   loss.backward();  // each product's backward uses the precision its forward used; weight grads stay f32
// Everything else (norms, softmax, losses, optimizers, f64 tensors) is untouched: master weights, activations
// and reductions stay f32. The mode is thread-local; AutocastGuard(DType::f32) turns it off for a scope.
#pragma once
#include "loom/core/dtype.h"

namespace loom {

// The dtype matrix products compute in on this thread: DType::f32 (off, the default) or DType::bf16.
DType autocast_dtype();
inline bool autocast_enabled() { return autocast_dtype() != DType::f32; }

class AutocastGuard {
 public:
  explicit AutocastGuard(DType dtype);  // DType::bf16 (on) or DType::f32 (off)
  ~AutocastGuard();
  AutocastGuard(const AutocastGuard&) = delete;
  AutocastGuard& operator=(const AutocastGuard&) = delete;

 private:
  DType prev_;
};

// "bf16" / "f32" (also "bfloat16", "float32") -> the autocast dtype, as a --precision flag spells it.
DType parse_precision(const char* name);

}  // namespace loom
