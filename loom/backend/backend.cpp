#include "loom/backend/backend.h"

#include <algorithm>

#include "loom/backend/cpu/cpu_backend.h"
#include "loom/backend/cuda/cuda.h"
#include "loom/core/allocator.h"

#ifdef _OPENMP
#include <omp.h>
#endif

extern "C" void openblas_set_num_threads(int);

namespace loom {

namespace {
Backend* g_backends[kDeviceTypeCount] = {};
// CUDA registers at first use: allocation (core) reaches it through this hook. This file is linked into every
// program that runs an op (backend_for lives here), so the initialiser is never dropped with an unused object.
const bool g_cuda_hook = (set_device_initializer(DeviceType::CUDA, [](int index) { cuda::device(index); }), true);
}  // namespace

// No fused relu + max-pool kernel unless a backend brings one: the op composes the two instead.
bool Backend::relu_max_pool2d_2x2(Tensor&, Tensor&, const Tensor&, const PoolGeom&) { return false; }
bool Backend::relu_max_pool2d_2x2_backward(Tensor&, const Tensor&, const Tensor&, const PoolGeom&) { return false; }
bool Backend::conv2d_relu_max_pool2d(Tensor&, Tensor&, const Tensor&, const Tensor&, const Tensor*, const ConvGeom&,
                                     const PoolGeom&) {
  return false;
}
bool Backend::conv2d_relu_max_pool2d_weight_grad(Tensor&, Tensor*, const Tensor&, const Tensor&, const Tensor&,
                                                 const ConvGeom&, const PoolGeom&) {
  return false;
}

Backend& backend_for(Device d) {
  static cpu::CpuBackend cpu_backend;
  if (d.type == DeviceType::CPU) return cpu_backend;
  Backend* be = g_backends[size_t(d.type)];
  // The CUDA backend registers itself at the first use of a CUDA device (no static initialiser, which a static
  // library's linker may drop); without a device or a CUDA build this throws the reason, naming the device.
  if (!be && d.type == DeviceType::CUDA) {
    cuda::device(d.index);
    be = g_backends[size_t(d.type)];
  }
  LOOM_CHECK(be != nullptr, "backend_for: no backend for device ", d, " in this build (register_backend adds one)");
  return *be;
}

void register_backend(DeviceType type, Backend* backend) {
  LOOM_CHECK(type != DeviceType::CPU, "register_backend: the CPU backend is built in");
  g_backends[size_t(type)] = backend;
}

static int g_threads = 0;

void set_num_threads(int n) {
  LOOM_CHECK(n >= 1, "set_num_threads: expected a positive thread count, got ", n);
  g_threads = n;
#ifdef _OPENMP
  omp_set_num_threads(n);
#endif
  openblas_set_num_threads(n);
}

int get_num_threads() {
#ifdef _OPENMP
  return g_threads ? g_threads : omp_get_max_threads();
#else
  return 1;
#endif
}

}  // namespace loom
