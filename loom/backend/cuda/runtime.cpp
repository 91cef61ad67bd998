// The CUDA device state: discovery, the one stream, the caching allocator, pinned staging for transfers and
// cuBLAS loaded on demand. In a build without LOOM_CUDA only the queries of cuda.h remain, answering "no".
#include "loom/backend/cuda/cuda.h"

#include <sstream>

#include "loom/core/error.h"

#ifdef LOOM_HAVE_CUDA
#include <dlfcn.h>

#include <algorithm>
#include <cstring>
#include <mutex>
#include <unordered_map>
#include <vector>

#include "loom/backend/backend.h"
#include "loom/backend/cuda/cuda_backend.h"
#include "loom/backend/cuda/runtime.h"
#include "loom/core/allocator.h"
#endif

namespace loom::cuda {

bool built() {
#ifdef LOOM_HAVE_CUDA
  return true;
#else
  return false;
#endif
}

Device parse_device(const std::string& name) {
  if (name == "cpu") return Device{};
  if (name == "cuda") return device(0);
  if (name.rfind("cuda:", 0) == 0) {
    const std::string n = name.substr(5);
    LOOM_CHECK(!n.empty() && n.find_first_not_of("0123456789") == std::string::npos && n.size() < 4,
               "--device: expected cpu, cuda or cuda:N, got '", name, "'");
    return device(std::stoi(n));
  }
  LOOM_FAIL("--device: expected cpu, cuda or cuda:N, got '", name, "'");
}

#ifndef LOOM_HAVE_CUDA

namespace {
const char* kNotBuilt = "this build has no CUDA backend (configure with -DLOOM_CUDA=ON where nvcc is installed)";
}
bool available() { return false; }
int device_count() { return 0; }
std::string unavailable_reason() { return kNotBuilt; }
Device device(int index) { LOOM_FAIL("cuda:", index, ": ", kNotBuilt); }
void synchronize() {}
MemoryStats memory_stats() { return {}; }
void reset_peak() {}
void empty_cache() {}
std::vector<GpuInfo> devices() { return {}; }
std::string library_versions() { return "none: built without CUDA (LOOM_CUDA=OFF or no nvcc at configure time)"; }
std::string info_text() { return "CUDA:        " + library_versions() + "\n"; }

#else  // LOOM_HAVE_CUDA

void check(cudaError_t e, const char* what) {
  if (e != cudaSuccess) LOOM_FAIL("CUDA ", what, ": ", cudaGetErrorString(e), " (", cudaGetErrorName(e), ")");
}

namespace {

struct State {
  std::once_flag probed;
  int count = 0;
  std::string reason;  // why none is usable
  std::mutex mu;
  int chosen = -1;
  cudaStream_t stream = nullptr;
};
State& state() {
  static State* s = new State();  // never destroyed: tensors may be freed during static destruction
  return *s;
}

void probe() {
  State& s = state();
  std::call_once(s.probed, [&] {
    int n = 0;
    const cudaError_t e = cudaGetDeviceCount(&n);
    if (e != cudaSuccess) {
      s.reason = std::string(cudaGetErrorString(e)) + " (" + cudaGetErrorName(e) + ")";
      cudaGetLastError();  // clear it: later calls must not see a stale error
      return;
    }
    if (n == 0) s.reason = "the CUDA driver reports no device";
    s.count = n;
  });
}

// ---- caching allocator: size classes shaped like loom/core/allocator.cpp's (four classes per power of two above
// 4 KiB) but in 256-byte steps below it, cudaMalloc's own alignment; kept here rather than shared because core's
// allocator header sits below every layer and this is the only other caller. Every kernel runs on the one stream, so a block freed after the kernels that use it were queued
// can be handed to later kernels without waiting: stream order keeps them apart.
size_t size_class(size_t n) {
  if (n <= 4096) return (n + 255) / 256 * 256;
  size_t p = 4096;
  while (p * 2 < n) p *= 2;
  const size_t q = p / 4;
  return (n + q - 1) / q * q;
}

struct Cache {
  std::mutex mu;
  std::unordered_map<size_t, std::vector<void*>> free_lists;
  size_t in_use = 0, peak = 0, cached = 0;
};
Cache& cache() {
  static Cache* c = new Cache();
  return *c;
}

void release_cached(Cache& c) {  // c.mu held
  cudaStreamSynchronize(state().stream);
  for (auto& [cls, list] : c.free_lists)
    for (void* p : list) cudaFree(p);
  c.free_lists.clear();
  c.cached = 0;
}

struct Staging {
  std::mutex mu;
  void* buf = nullptr;
  size_t cap = 0;
};
Staging& staging() {
  static Staging* s = new Staging();
  return *s;
}
constexpr size_t kStagingChunk = size_t(8) << 20;

void* staging_buffer(Staging& s) {  // s.mu held
  if (!s.buf) {
    LOOM_CUDA_CHECK(cudaMallocHost(&s.buf, kStagingChunk));
    s.cap = kStagingChunk;
  }
  return s.buf;
}

}  // namespace

cudaStream_t stream() { return state().stream; }
int current_index() { return state().chosen; }

void* device_alloc(size_t nbytes) {
  if (nbytes == 0) return nullptr;
  const size_t cls = size_class(nbytes);
  Cache& c = cache();
  std::lock_guard<std::mutex> lock(c.mu);
  auto it = c.free_lists.find(cls);
  void* p = nullptr;
  if (it != c.free_lists.end() && !it->second.empty()) {
    p = it->second.back();
    it->second.pop_back();
    c.cached -= cls;
  } else {
    cudaError_t e = cudaMalloc(&p, cls);
    if (e == cudaErrorMemoryAllocation && c.cached > 0) {  // give the cache back and try once more
      cudaGetLastError();
      release_cached(c);
      e = cudaMalloc(&p, cls);
    }
    if (e != cudaSuccess) {
      cudaGetLastError();
      LOOM_FAIL("CUDA out of memory: asked for ", nbytes, " bytes with ", c.in_use, " in use and ", c.cached,
                " cached (", cudaGetErrorString(e), "); use a smaller batch or model");
    }
  }
  c.in_use += cls;
  if (c.in_use > c.peak) c.peak = c.in_use;
  return p;
}

void device_free(void* p, size_t nbytes) {
  if (!p) return;
  const size_t cls = size_class(nbytes);
  Cache& c = cache();
  std::lock_guard<std::mutex> lock(c.mu);
  c.in_use -= cls;
  c.free_lists[cls].push_back(p);
  c.cached += cls;
}

void upload(void* dst, const void* src, size_t nbytes) {
  Staging& s = staging();
  std::lock_guard<std::mutex> lock(s.mu);
  char* d = static_cast<char*>(dst);
  const char* h = static_cast<const char*>(src);
  for (size_t done = 0; done < nbytes;) {
    const size_t n = std::min(nbytes - done, kStagingChunk);
    void* buf = staging_buffer(s);
    std::memcpy(buf, h + done, n);
    LOOM_CUDA_CHECK(cudaMemcpyAsync(d + done, buf, n, cudaMemcpyHostToDevice, stream()));
    LOOM_CUDA_CHECK(cudaStreamSynchronize(stream()));  // the staging buffer is reused next
    done += n;
  }
}

void download(void* dst, const void* src, size_t nbytes) {
  Staging& s = staging();
  std::lock_guard<std::mutex> lock(s.mu);
  char* h = static_cast<char*>(dst);
  const char* d = static_cast<const char*>(src);
  for (size_t done = 0; done < nbytes;) {
    const size_t n = std::min(nbytes - done, kStagingChunk);
    void* buf = staging_buffer(s);
    LOOM_CUDA_CHECK(cudaMemcpyAsync(buf, d + done, n, cudaMemcpyDeviceToHost, stream()));
    LOOM_CUDA_CHECK(cudaStreamSynchronize(stream()));
    std::memcpy(h + done, buf, n);
    done += n;
  }
}

namespace {

void* open_library(const char* soname) {
  if (void* h = dlopen(soname, RTLD_NOW | RTLD_LOCAL)) return h;
#ifdef LOOM_CUDA_LIBDIR
  const std::string full = std::string(LOOM_CUDA_LIBDIR) + "/" + soname;
  return dlopen(full.c_str(), RTLD_NOW | RTLD_LOCAL);
#else
  return nullptr;
#endif
}

template <class F>
F symbol(void* lib, const char* name) {
  void* p = dlsym(lib, name);
  LOOM_CHECK(p != nullptr, "cuBLAS: symbol ", name, " is missing from libcublas.so.", CUBLAS_VER_MAJOR);
  return reinterpret_cast<F>(p);
}

const char* cublas_soname() {
  static const std::string n = "libcublas.so." + std::to_string(CUBLAS_VER_MAJOR);
  return n.c_str();
}

}  // namespace

void check_cublas(int status, const char* what) {
  LOOM_CHECK(status == CUBLAS_STATUS_SUCCESS, "cuBLAS ", what, " failed with status ", status);
}

Cublas& cublas() {
  static Cublas* c = [] {
    void* lib = open_library(cublas_soname());
    LOOM_CHECK(lib != nullptr, "cuBLAS: cannot load ", cublas_soname(), ": ", dlerror(),
               " (add the CUDA toolkit's lib64 to LD_LIBRARY_PATH)");
    auto* r = new Cublas();
    r->sgemm = symbol<decltype(r->sgemm)>(lib, "cublasSgemm_v2");
    r->dgemm = symbol<decltype(r->dgemm)>(lib, "cublasDgemm_v2");
    r->gemm_ex = symbol<decltype(r->gemm_ex)>(lib, "cublasGemmEx");
    auto create = symbol<decltype(&cublasCreate_v2)>(lib, "cublasCreate_v2");
    auto set_stream = symbol<decltype(&cublasSetStream_v2)>(lib, "cublasSetStream_v2");
    auto set_math = symbol<decltype(&cublasSetMathMode)>(lib, "cublasSetMathMode");
    check_cublas(create(&r->handle), "create");
    check_cublas(set_stream(r->handle, stream()), "set stream");
    // Default math: f32 GEMMs stay f32 (no TF32 unless NVIDIA_TF32_OVERRIDE=1 is set), so results match the
    // CPU backend's; bf16 GemmEx calls still use the tensor cores (pedantic mode could take them away).
    check_cublas(set_math(r->handle, CUBLAS_DEFAULT_MATH), "set math mode");
    return r;
  }();
  return *c;
}

namespace {
int* g_flag = nullptr;
}
int* error_flag_reset() {
  if (!g_flag) LOOM_CUDA_CHECK(cudaMalloc(reinterpret_cast<void**>(&g_flag), sizeof(int)));
  LOOM_CUDA_CHECK(cudaMemsetAsync(g_flag, 0, sizeof(int), stream()));
  return g_flag;
}
bool error_flag_raised() {
  int v = 0;
  LOOM_CUDA_CHECK(cudaMemcpyAsync(&v, g_flag, sizeof(int), cudaMemcpyDeviceToHost, stream()));
  LOOM_CUDA_CHECK(cudaStreamSynchronize(stream()));
  return v != 0;
}

bool available() {
  probe();
  return state().count > 0;
}
int device_count() {
  probe();
  return state().count;
}
std::string unavailable_reason() {
  probe();
  return state().reason;
}

Device device(int index) {
  probe();
  State& s = state();
  LOOM_CHECK(s.count > 0, "no CUDA device: ", s.reason, " (asked for cuda:", index, ")");
  LOOM_CHECK(index >= 0 && index < s.count, "cuda:", index, ": no such device (this machine has ", s.count,
             " CUDA device", s.count == 1 ? "" : "s", ": cuda:0", s.count > 1 ? " to cuda:" + std::to_string(s.count - 1) : "", ")");
  std::lock_guard<std::mutex> lock(s.mu);
  if (s.chosen < 0) {
    LOOM_CUDA_CHECK(cudaSetDevice(index));
    LOOM_CUDA_CHECK(cudaStreamCreateWithFlags(&s.stream, cudaStreamNonBlocking));
    register_allocator(DeviceType::CUDA, {device_alloc, device_free});
    static CudaBackend* be = new CudaBackend();
    register_backend(DeviceType::CUDA, be);
    s.chosen = index;
  }
  LOOM_CHECK(s.chosen == index, "cuda:", index, ": this process already uses cuda:", s.chosen,
             " (one CUDA device per process; run one process per GPU)");
  return Device{DeviceType::CUDA, index};
}

void synchronize() {
  if (state().chosen >= 0) LOOM_CUDA_CHECK(cudaStreamSynchronize(stream()));
}

MemoryStats memory_stats() {
  Cache& c = cache();
  std::lock_guard<std::mutex> lock(c.mu);
  return {c.in_use, c.peak, c.cached};
}
void reset_peak() {
  Cache& c = cache();
  std::lock_guard<std::mutex> lock(c.mu);
  c.peak = c.in_use;
}
void empty_cache() {
  if (state().chosen < 0) return;
  Cache& c = cache();
  std::lock_guard<std::mutex> lock(c.mu);
  release_cached(c);
}

std::vector<GpuInfo> devices() {
  std::vector<GpuInfo> r;
  for (int i = 0; i < device_count(); ++i) {
    cudaDeviceProp p{};
    if (cudaGetDeviceProperties(&p, i) != cudaSuccess) {
      cudaGetLastError();
      continue;
    }
    r.push_back({i, p.name, p.totalGlobalMem, p.major, p.minor, p.multiProcessorCount});
  }
  return r;
}

std::string library_versions() {
  std::ostringstream os;
  int rt = 0, drv = 0;
  cudaRuntimeGetVersion(&rt);
  cudaDriverGetVersion(&drv);
  cudaGetLastError();
  os << "built with CUDA " << CUDART_VERSION / 1000 << "." << (CUDART_VERSION % 1000) / 10 << " (runtime "
     << rt / 1000 << "." << (rt % 1000) / 10 << ", driver ";
  if (drv) os << drv / 1000 << "." << (drv % 1000) / 10;
  else os << "none";
  os << ")";
  if (void* lib = open_library(cublas_soname())) {
    using GetProp = cublasStatus_t (*)(libraryPropertyType, int*);
    int ma = 0, mi = 0, pa = 0;
    if (auto f = reinterpret_cast<GetProp>(dlsym(lib, "cublasGetProperty"))) {
      f(MAJOR_VERSION, &ma), f(MINOR_VERSION, &mi), f(PATCH_LEVEL, &pa);
      os << ", cuBLAS " << ma << "." << mi << "." << pa;
    }
  } else {
    os << ", cuBLAS not loadable (" << cublas_soname() << ")";
  }
  if (void* lib = open_library("libcudnn.so.9")) {
    using GetVersion = size_t (*)();
    if (auto f = reinterpret_cast<GetVersion>(dlsym(lib, "cudnnGetVersion"))) {
      const size_t v = f();
      os << ", cuDNN " << v / 10000 << "." << (v % 10000) / 100 << "." << v % 100 << " (found; not used yet)";
    }
  } else {
    os << ", cuDNN not found";
  }
  os << ", NCCL not built";
  return os.str();
}

std::string info_text() {
  std::ostringstream os;
  os << "CUDA:        " << library_versions() << "\n";
  const std::vector<GpuInfo> gpus = devices();
  if (gpus.empty()) os << "  no device: " << unavailable_reason() << "\n";
  for (const GpuInfo& g : gpus)
    os << "  cuda:" << g.index << "  " << g.name << ", " << g.total_memory / (1024 * 1024) << " MiB, compute capability "
       << g.major << "." << g.minor << ", " << g.multiprocessors << " SMs\n";
  return os.str();
}

#endif  // LOOM_HAVE_CUDA

}  // namespace loom::cuda
