#include "loom/io/mapped_weights.h"

#include <cstdint>
#include <mutex>
#include <unordered_map>

#include "loom/core/tensor_impl.h"

namespace loom::io {

namespace {

// Storage's free function takes no context, so the mappings that storages point into are kept here, by address and
// with a count of the storages at that address (two parameters may read one file tensor), until the last of them
// frees (a model dropped, or a weight replaced): then the mapping goes when its last user does.
struct MappedUse {
  std::shared_ptr<const MappedFile> file;
  int storages = 0;
};
std::mutex g_mu;
std::unordered_map<void*, MappedUse>& uses() {
  static auto* m = new std::unordered_map<void*, MappedUse>();  // outlives statics: storages may free after them
  return *m;
}

void release_mapped(void* p, size_t) {
  std::lock_guard<std::mutex> lock(g_mu);
  auto it = uses().find(p);
  if (it != uses().end() && --it->second.storages == 0) uses().erase(it);
}

}  // namespace

bool use_mapped_bytes(const Tensor& param, std::shared_ptr<const MappedFile> file, char* p, size_t nbytes) {
  if (!file || !param.defined() || !param.is_contiguous() || param.impl()->offset != 0 || !is_host(param.device()))
    return false;
  Storage& s = *param.impl()->storage;
  if (s.nbytes != nbytes || reinterpret_cast<uintptr_t>(p) % 64 != 0 || s.release == &release_mapped) return false;
  {
    std::lock_guard<std::mutex> lock(g_mu);
    MappedUse& u = uses()[p];
    u.file = std::move(file);
    ++u.storages;
  }
  s.release(s.data, s.nbytes);
  s.data = p;
  s.release = &release_mapped;
  return true;
}

bool uses_mapped_bytes(const Tensor& t) {
  return t.defined() && t.impl()->storage && t.impl()->storage->release == &release_mapped;
}

}  // namespace loom::io
