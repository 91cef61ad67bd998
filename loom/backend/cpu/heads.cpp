// Backend::split_heads / merge_heads_grad on the CPU: GPT's (B, T, 3C) <-> q, k, v (B, H, T, D) copy in one
// pass (the autograd node that uses it lives with the model, models/gpt.cpp).
#include <algorithm>

#include "loom/backend/cpu/cpu_backend.h"
#include "loom/core/dispatch.h"

namespace loom::cpu {

namespace {

template <class T>
void head_copy(const T* packed, T* q, T* k, T* v, int64_t B, int64_t Tn, int64_t H, int64_t D, bool to_heads) {
  const int64_t C = H * D;
#pragma omp parallel for collapse(2) if (B * Tn * C > 32768)
  for (int64_t b = 0; b < B; ++b)
    for (int64_t t = 0; t < Tn; ++t) {
      T* row = const_cast<T*>(packed) + (b * Tn + t) * 3 * C;
      T* outs[3] = {q, k, v};
      for (int s = 0; s < 3; ++s)
        for (int64_t h = 0; h < H; ++h) {
          T* head = outs[s] + ((b * H + h) * Tn + t) * D;
          T* part = row + s * C + h * D;
          if (to_heads) std::copy(part, part + D, head);
          else std::copy(head, head + D, part);
        }
    }
}

void run_head_copy(const Tensor& packed, const Tensor& q, const Tensor& k, const Tensor& v, int64_t H, bool to_heads) {
  const int64_t B = packed.size(0), Tn = packed.size(1), D = packed.size(2) / (3 * H);
  dispatch_float(packed.dtype(), "split_heads", [&]<class T>() {
    head_copy(static_cast<const T*>(packed.raw_data()), static_cast<T*>(q.raw_data()), static_cast<T*>(k.raw_data()),
              static_cast<T*>(v.raw_data()), B, Tn, H, D, to_heads);
  });
}

}  // namespace

void CpuBackend::split_heads(Tensor& q, Tensor& k, Tensor& v, const Tensor& packed, int64_t H) {
  run_head_copy(packed, q, k, v, H, true);
}

void CpuBackend::merge_heads_grad(Tensor& packed, const Tensor& gq, const Tensor& gk, const Tensor& gv, int64_t H) {
  run_head_copy(packed, gq, gk, gv, H, false);
}

}  // namespace loom::cpu
