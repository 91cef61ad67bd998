#include "loom/ops/index_check.h"

#include "loom/autograd/grad_mode.h"
#include "loom/ops/creation.h"
#include "loom/ops/elementwise.h"
#include "loom/ops/reduce.h"

namespace loom {

std::optional<int64_t> first_index_out_of_range(const Tensor& idx0, int64_t n, std::optional<int64_t> allowed) {
  LOOM_CHECK(idx0.dtype() == DType::i64, "index check: expected an int64 index tensor, got ", idx0.dtype());
  const Tensor idx = idx0.contiguous().reshape({-1});
  const int64_t count = idx.numel();
  if (count == 0) return std::nullopt;
  const auto bad_value = [&](int64_t v) { return (v < 0 || v >= n) && (!allowed || v != *allowed); };
  if (is_host(idx.device())) {
    const int64_t* p = idx.data<int64_t>();
    for (int64_t i = 0; i < count; ++i)
      if (bad_value(p[i])) return p[i];
    return std::nullopt;
  }
  NoGradGuard ng;
  Tensor bad = logical_or(idx < 0.0, idx >= double(n));
  if (allowed) bad = logical_and(bad, idx != double(*allowed));
  if (max(bad.to(DType::f64)).item() == 0) return std::nullopt;
  const Tensor pos = arange(count, {.dtype = DType::f64, .device = idx.device()});
  const auto first = int64_t(min(where(bad, pos, double(count))).item());
  return idx[first].item<int64_t>();
}

}  // namespace loom
