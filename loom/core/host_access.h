// When host code may read a tensor's memory through data<T>(): always for CPU tensors; for a tensor on another
// device only while a backend runs one of its entries (a backend whose memory the host can address, such as the
// CPU-backed strict test device, opens a scope around each call). Anything else is a bypass of the Backend and
// throws, so a test on such a device finds it.
//   { HostAccessScope open;  cpu_backend.unary(op, out, x); }   // inside a backend entry
#pragma once
#include <atomic>

namespace loom {

// Scopes nest and are process-wide (not per thread): a kernel's OpenMP threads run inside their caller's scope.
class HostAccessScope {
 public:
  HostAccessScope();
  ~HostAccessScope();
  HostAccessScope(const HostAccessScope&) = delete;
  HostAccessScope& operator=(const HostAccessScope&) = delete;
};

bool host_access_open();

}  // namespace loom
