// Random fills. Values are drawn sequentially from one generator so a seed gives the same tensor
// whatever the thread count.
#include "loom/backend/cpu/cpu_backend.h"
#include "loom/core/dispatch.h"
#include "loom/core/generator.h"

namespace loom::cpu {

void CpuBackend::uniform(Tensor& out, double lo, double hi, Generator& gen) {
  LOOM_CHECK(out.is_contiguous(), "uniform_: kernel expects a contiguous tensor");
  dispatch_float(out.dtype(), "uniform_", [&]<class T>() {
    T* p = static_cast<T*>(out.raw_data());
    const int64_t n = out.numel();
    for (int64_t i = 0; i < n; ++i) p[i] = T(lo + (hi - lo) * gen.next_double());
  });
}

void CpuBackend::normal(Tensor& out, double mean, double std, Generator& gen) {
  LOOM_CHECK(out.is_contiguous(), "normal_: kernel expects a contiguous tensor");
  dispatch_float(out.dtype(), "normal_", [&]<class T>() {
    T* p = static_cast<T*>(out.raw_data());
    const int64_t n = out.numel();
    for (int64_t i = 0; i < n; ++i) p[i] = T(mean + std * gen.next_normal());
  });
}

}  // namespace loom::cpu
