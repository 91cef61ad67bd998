#include "loom/core/storage.h"

#include <cstdlib>
#include <new>

#include "loom/core/error.h"

namespace loom {

Storage::Storage(size_t n, Device d) : nbytes(n), device(d) {
  LOOM_CHECK(d.type == DeviceType::CPU, "Storage: device ", d, " is not available in this build");
  // 64-byte alignment for AVX-512 loads; round the size up as aligned_alloc requires.
  size_t rounded = (n + 63) / 64 * 64;
  data = rounded ? std::aligned_alloc(64, rounded) : nullptr;
  if (rounded && !data) throw std::bad_alloc();
}

Storage::~Storage() { std::free(data); }

}  // namespace loom
