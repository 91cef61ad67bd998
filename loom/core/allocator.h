// CPU memory for tensors: 64-byte aligned blocks recycled through size-class free lists. Training loops
// allocate the same shapes every step; reusing warm blocks avoids page faults and zeroing by the kernel
// (measured: 15% of a 512x512 GEMM's time went to first-touch faults on a fresh output).
//   void* p = loom::cpu_alloc(n);  ...  loom::cpu_free(p, n);
#pragma once
#include <cstddef>

#include "loom/core/device.h"

namespace loom {

void* cpu_alloc(size_t nbytes);
void cpu_free(void* p, size_t nbytes);
// Returns every cached block to the system (e.g. before measuring peak memory of a new phase).
void cpu_empty_cache();
size_t cpu_cached_bytes();

// Storage takes its memory from its device's allocator: cpu_alloc / cpu_free for the CPU, and for another device
// the pair its backend registered (a device with none is a clear error naming it).
struct DeviceAllocator {
  void* (*alloc)(size_t nbytes) = nullptr;
  void (*free)(void* p, size_t nbytes) = nullptr;
};
void register_allocator(DeviceType type, DeviceAllocator a);
DeviceAllocator allocator_for(Device d);
// A device whose backend registers itself at first use (CUDA: loom/backend/cuda/cuda.h) installs here the call that
// does it; allocator_for runs it for a device type that has no allocator yet (it registers one, or throws why not).
void set_device_initializer(DeviceType type, void (*init)(int index));

}  // namespace loom
