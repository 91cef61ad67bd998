// Index arguments checked on any device: the first value of an int64 index tensor outside [0, n) (values equal to
// `allowed`, e.g. an ignore_index, pass), or nothing. A host tensor is scanned in place (the check is part of the
// op's argument checking, and a scan is cheapest); a device tensor is checked with tensor ops and one scalar
// transfer, so no host code reads device memory.
//   if (auto bad = first_index_out_of_range(idx, num)) LOOM_FAIL("embedding: index ", *bad, " is out of range");
#pragma once
#include <optional>

#include "loom/core/tensor.h"

namespace loom {

std::optional<int64_t> first_index_out_of_range(const Tensor& idx, int64_t n, std::optional<int64_t> allowed = {});

}  // namespace loom
