// The CUDA device from the host's side: is there one, which, how much memory the caching allocator holds, and
// the handle that makes loom use it. Present in every build; without LOOM_CUDA every query says so and
// device() throws "this build has no CUDA backend (configure with -DLOOM_CUDA=ON)".
//   if (loom::cuda::available()) { Device d = loom::cuda::device(0); model->to(d); x = x.to(d); ... }
//   loom::cuda::synchronize();  loom::cuda::memory_stats().peak;
// The backend and its allocator register themselves the first time device() (or backend_for / Tensor::to with a
// cuda device) runs, not at static initialisation. One CUDA device per process: the first index asked for.
#pragma once
#include <cstddef>
#include <string>
#include <vector>

#include "loom/core/device.h"

namespace loom::cuda {

bool built();        // this build has the CUDA backend (LOOM_CUDA)
bool available();    // built, a driver answers and at least one device exists
int device_count();  // 0 without a usable device
// Why no device is usable ("" when one is): the CUDA runtime's error string, or that the build has no CUDA.
std::string unavailable_reason();

// Device{CUDA, index}, with the backend and allocator registered. Throws loom::Error "no CUDA device: <reason>"
// when none is usable, or names the index when it is out of range or another device was chosen before.
Device device(int index = 0);
// The same from a --device argument: "cpu", "cuda" or "cuda:N".
Device parse_device(const std::string& name);

void synchronize();  // waits for every kernel and copy loom queued

// The caching allocator's figures in bytes: handed out now, the most ever handed out at once (since the last
// reset_peak), and held in the free lists.
struct MemoryStats {
  size_t in_use = 0, peak = 0, cached = 0;
};
MemoryStats memory_stats();
void reset_peak();
void empty_cache();  // returns every cached block to the driver

struct GpuInfo {
  int index = 0;
  std::string name;
  size_t total_memory = 0;
  int major = 0, minor = 0;  // compute capability
  int multiprocessors = 0;
};
std::vector<GpuInfo> devices();  // empty without a usable device

// "CUDA 13.0 (driver none), cuBLAS 13.1.0, cuDNN 9.19.0", or that the build has none.
std::string library_versions();
// The `loom info` section: versions, then one line per GPU or the reason there is none.
std::string info_text();

}  // namespace loom::cuda
