#include "loom/core/storage.h"

#include <cstdlib>
#include <new>

#include "loom/core/allocator.h"
#include "loom/core/error.h"

namespace loom {

Storage::Storage(size_t n, Device d) : nbytes(n), device(d) {
  LOOM_CHECK(d.type == DeviceType::CPU, "Storage: device ", d, " is not available in this build");
  data = cpu_alloc(n);
}

Storage::~Storage() { cpu_free(data, nbytes); }

}  // namespace loom
