// Seeded normal values in a plain float buffer (through loom's RNG, so a test is reproducible), for kernel
// tests that call backend functions on raw pointers:
//   std::vector<float> w = loom::test::random_buffer(N * K, /*seed=*/1);
#pragma once
#include <cstdint>
#include <vector>

#include "loom/loom.h"

namespace loom::test {

// n values x * scale + shift with x ~ N(0, 1), drawn after manual_seed(seed).
inline std::vector<float> random_buffer(int64_t n, uint64_t seed, float scale = 1, float shift = 0) {
  manual_seed(seed);
  Tensor t = randn({n});
  std::vector<float> v(t.data<float>(), t.data<float>() + n);
  for (float& f : v) f = f * scale + shift;
  return v;
}

}  // namespace loom::test
