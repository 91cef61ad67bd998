#include "loom/core/allocator.h"

#include <sys/mman.h>

#include <cstdlib>
#include <mutex>
#include <new>
#include <unordered_map>
#include <vector>

#include "loom/core/error.h"

namespace loom {

namespace {

// Size classes: multiples of 64 bytes below 4 KiB, then four classes per power of two, so a block
// is never more than 25% larger than asked.
size_t size_class(size_t n) {
  if (n <= 4096) return (n + 63) / 64 * 64;
  size_t p = 4096;
  while (p * 2 < n) p *= 2;
  const size_t q = p / 4;
  return (n + q - 1) / q * q;
}

struct Cache {
  std::mutex mu;
  std::unordered_map<size_t, std::vector<void*>> free_lists;
  size_t cached = 0;
  // Past this, freed blocks go back to the system: the cache must not hide a real leak or hold a
  // finished phase's memory forever.
  static constexpr size_t kMaxCached = size_t(2) << 30;
};

Cache& cache() {
  static Cache* c = new Cache();  // never destroyed: tensors may be freed during static destruction
  return *c;
}

// A block of at least this size starts on a 2 MiB boundary and asks for transparent huge pages over the whole
// 2 MiB pages inside the bytes asked for (where THP is set to "madvise", as on this project's VMs, nothing gets them
// unless asked). Why: the first touch of fresh memory costs a page fault per 4 KiB page, and on a virtual machine
// with shadow paging each fault is a hypervisor exit; a 2 MiB page is one fault instead of 512 (a GPT-2 124M HF load
// went from 1.8 to 0.9 s), and one TLB entry instead of 512 (W5, GPT-2-sized training, 1.28x; docs/performance.md).
// Only pages wholly inside `nbytes` are marked, so a block's slack (size classes round up to 25%) never becomes
// resident by the marking: the peak stays what the tensors touch.
constexpr size_t kHugePage = size_t(2) << 20;
constexpr size_t kHugeFrom = 2 * kHugePage;

void* fresh_block(size_t cls, size_t nbytes) {
  if (cls < kHugeFrom) return std::aligned_alloc(64, cls);
  void* p = std::aligned_alloc(kHugePage, (cls + kHugePage - 1) / kHugePage * kHugePage);
  if (p) {
    const size_t whole = nbytes / kHugePage * kHugePage;
    (void)::madvise(p, whole, MADV_HUGEPAGE);  // advice only: where THP is off or "never", pages stay 4 KiB
  }
  return p;
}

}  // namespace

void* cpu_alloc(size_t nbytes) {
  if (nbytes == 0) return nullptr;
  const size_t cls = size_class(nbytes);
#ifndef LOOM_SANITIZE
  {
    Cache& c = cache();
    std::lock_guard<std::mutex> lock(c.mu);
    auto it = c.free_lists.find(cls);
    if (it != c.free_lists.end() && !it->second.empty()) {
      void* p = it->second.back();
      it->second.pop_back();
      c.cached -= cls;
      return p;
    }
  }
#endif
  void* p = fresh_block(cls, nbytes);
  if (!p) throw std::bad_alloc();
  return p;
}

void cpu_free(void* p, size_t nbytes) {
  if (!p) return;
#ifndef LOOM_SANITIZE  // under ASan every block goes back at once, so use-after-free is caught
  const size_t cls = size_class(nbytes);
  Cache& c = cache();
  {
    std::lock_guard<std::mutex> lock(c.mu);
    if (c.cached + cls <= Cache::kMaxCached) {
      c.free_lists[cls].push_back(p);
      c.cached += cls;
      return;
    }
  }
#endif
  std::free(p);
}

void cpu_empty_cache() {
  Cache& c = cache();
  std::lock_guard<std::mutex> lock(c.mu);
  for (auto& [cls, list] : c.free_lists)
    for (void* p : list) std::free(p);
  c.free_lists.clear();
  c.cached = 0;
}

size_t cpu_cached_bytes() {
  Cache& c = cache();
  std::lock_guard<std::mutex> lock(c.mu);
  return c.cached;
}

// ---- per-device allocators: the CPU's is the cache above; other devices register theirs (a backend at start-up).

namespace {
std::mutex g_alloc_mu;
DeviceAllocator g_allocators[kDeviceTypeCount];
void (*g_initializers[kDeviceTypeCount])(int) = {};
}  // namespace

void set_device_initializer(DeviceType type, void (*init)(int index)) {
  LOOM_CHECK(type != DeviceType::CPU, "set_device_initializer: the CPU needs none");
  std::lock_guard<std::mutex> lock(g_alloc_mu);
  g_initializers[size_t(type)] = init;
}

void register_allocator(DeviceType type, DeviceAllocator a) {
  LOOM_CHECK(type != DeviceType::CPU, "register_allocator: CPU memory always comes from cpu_alloc");
  LOOM_CHECK((a.alloc == nullptr) == (a.free == nullptr), "register_allocator: give both alloc and free, or neither");
  std::lock_guard<std::mutex> lock(g_alloc_mu);
  g_allocators[size_t(type)] = a;
}

DeviceAllocator allocator_for(Device d) {
  if (d.type == DeviceType::CPU) return {cpu_alloc, cpu_free};
  void (*init)(int) = nullptr;
  {
    std::lock_guard<std::mutex> lock(g_alloc_mu);
    if (!g_allocators[size_t(d.type)].alloc) init = g_initializers[size_t(d.type)];
  }
  if (init) init(d.index);  // outside the lock: it registers through register_allocator
  std::lock_guard<std::mutex> lock(g_alloc_mu);
  const DeviceAllocator a = g_allocators[size_t(d.type)];
  LOOM_CHECK(a.alloc != nullptr, "Storage: device ", d, " has no allocator in this build (no backend registered it)");
  return a;
}

}  // namespace loom
