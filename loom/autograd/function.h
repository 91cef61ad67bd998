// How an op records itself for backward, next to its forward:
//
//   Tensor y = make_tensor(...);  ... forward kernel ...
//   if (autograd::needs_grad(a, b))
//     autograd::record("mul", {y}, {a, b}, [sa = autograd::save(a), sb = autograd::save(b)](const auto& g) {
//       return std::vector<Tensor>{g[0] * sb.get(), g[0] * sa.get()};
//     });
//
// Backward closures run with grad mode off and may use any op. Gradients they return for broadcast
// inputs are reduced back to the input's shape by the engine's caller (use sum_to in the closure).
#pragma once
#include <initializer_list>

#include "loom/autograd/grad_mode.h"
#include "loom/autograd/node.h"

namespace loom::autograd {

inline bool needs_grad(std::initializer_list<Tensor> ts) {
  if (!grad_enabled()) return false;
  for (const auto& t : ts)
    if (t.defined() && t.requires_grad()) return true;
  return false;
}
bool needs_grad(const std::vector<Tensor>& ts);

// A tensor kept for backward: a detached alias (so no reference cycle through grad_fn) plus the
// storage version at save time, checked when backward reads it.
class SavedTensor {
 public:
  SavedTensor() = default;
  explicit SavedTensor(const Tensor& t, const char* op = "");
  const Tensor& get() const;
  bool defined() const { return t_.defined(); }

 private:
  Tensor t_;
  uint64_t version_ = 0;
  const char* op_ = "";
};

inline SavedTensor save(const Tensor& t, const char* op = "") { return SavedTensor(t, op); }

// Makes `outputs` the outputs of a new FunctionNode whose inputs are `inputs`.
void record(const char* op, const std::vector<Tensor>& outputs, const std::vector<Tensor>& inputs, BackwardFn fn);

}  // namespace loom::autograd
