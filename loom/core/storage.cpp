#include "loom/core/storage.h"

#include <cstdlib>
#include <new>

#include "loom/core/allocator.h"
#include "loom/core/error.h"

namespace loom {

// Memory comes from the device's allocator (cpu_alloc for the CPU); the free function is kept so a storage
// never looks its device up again while being destroyed.
Storage::Storage(size_t n, Device d) : nbytes(n), device(d) {
  const DeviceAllocator a = allocator_for(d);
  data = a.alloc(n);
  release = a.free;
}

Storage::~Storage() { release(data, nbytes); }

}  // namespace loom
