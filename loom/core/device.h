// Where a tensor's memory lives. Only CPU kernels exist today; the enum is here so that a CUDA
// backend slots in without changing any op signature.
#pragma once
#include <ostream>
#include <string>

namespace loom {

enum class DeviceType : uint8_t { CPU, CUDA };

struct Device {
  DeviceType type = DeviceType::CPU;
  int index = 0;
  bool operator==(const Device& o) const { return type == o.type && index == o.index; }
  bool operator!=(const Device& o) const { return !(*this == o); }
};

inline std::ostream& operator<<(std::ostream& os, const Device& d) {
  if (d.type == DeviceType::CPU) return os << "cpu";
  return os << "cuda:" << d.index;
}

}  // namespace loom
