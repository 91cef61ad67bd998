// Storage: a reference-counted, 64-byte aligned block of memory on a device, from that device's allocator
// (allocator.h).
// The version counter is bumped by every in-place write, so autograd can tell when a tensor saved for
// backward was modified (all views of a storage share it, as in PyTorch).
#pragma once
#include <cstddef>
#include <cstdint>
#include <memory>

#include "loom/core/device.h"

namespace loom {

struct Storage {
  void* data = nullptr;
  size_t nbytes = 0;
  Device device;
  uint64_t version = 0;
  void (*release)(void*, size_t) = nullptr;  // the device allocator's free

  Storage(size_t nbytes, Device device);
  ~Storage();
  Storage(const Storage&) = delete;
  Storage& operator=(const Storage&) = delete;
};

}  // namespace loom
