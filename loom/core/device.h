// Where a tensor's memory lives. The CPU backend is built in; another device works once its backend and
// allocator are registered (register_backend, register_allocator), so a CUDA backend slots in without changing
// any op signature. PrivateUse is a device type the library itself never backs: tests (the strict device) and
// out-of-tree backends register theirs under it.
#pragma once
#include <cstddef>
#include <cstdint>
#include <ostream>
#include <string>

namespace loom {

enum class DeviceType : uint8_t { CPU, CUDA, PrivateUse };
constexpr size_t kDeviceTypeCount = 3;

struct Device {
  DeviceType type = DeviceType::CPU;
  int index = 0;
  bool operator==(const Device& o) const { return type == o.type && index == o.index; }
  bool operator!=(const Device& o) const { return !(*this == o); }
};

// Host code reads a host tensor's memory directly (data<T>()); other devices' only through their backend.
inline bool is_host(Device d) { return d.type == DeviceType::CPU; }

inline std::ostream& operator<<(std::ostream& os, const Device& d) {
  if (d.type == DeviceType::CPU) return os << "cpu";
  return os << (d.type == DeviceType::CUDA ? "cuda:" : "privateuse:") << d.index;
}

}  // namespace loom
