// loom info: what this build is and what the machine offers (the "verify your environment" step).
#include <fstream>
#include <iostream>
#include <set>
#include <sstream>
#include <thread>

#include "args.h"
#include "commands.h"
#include "loom/backend/backend.h"
#include "loom/backend/cuda/cuda.h"
#include "loom/backend/cpu/cpu_features.h"
#include "loom/dist/comm.h"
#include "model_file.h"

extern "C" char* openblas_get_config();

#ifndef LOOM_BUILD_TYPE
#define LOOM_BUILD_TYPE "unknown"
#endif
#ifndef LOOM_CXX_FLAGS
#define LOOM_CXX_FLAGS ""
#endif

namespace loom::cli {

namespace {

// The CPU flags the kernel reports (first processor's "flags" line).
std::set<std::string> cpu_flags(std::string* model) {
  std::ifstream f("/proc/cpuinfo");
  std::set<std::string> flags;
  std::string line;
  while (std::getline(f, line)) {
    if (model && model->empty() && line.starts_with("model name")) *model = line.substr(line.find(':') + 2);
    if (flags.empty() && line.starts_with("flags")) {
      std::istringstream is(line.substr(line.find(':') + 1));
      for (std::string w; is >> w;) flags.insert(w);
    }
  }
  return flags;
}

}  // namespace

int cmd_info(const Argv& argv) {
  Args a("loom info", "Show the loom version, build, CPU features, threads and optional components.");
  a.parse(argv);
  std::string cpu;
  const std::set<std::string> flags = cpu_flags(&cpu);
  auto has = [&](const char* f) { return flags.count(f) ? "yes" : "no"; };
  std::cout << "loom " << loom_version() << "\n"
            << "build:       " << LOOM_BUILD_TYPE << ", " << __VERSION__ << " (C++" << __cplusplus / 100 % 100 << ")"
            << (std::string(LOOM_CXX_FLAGS).empty() ? "" : ", flags " LOOM_CXX_FLAGS) << "\n"
#if defined(__AVX512F__)
            << "compiled for: AVX-512 (-march=native)\n"
#elif defined(__AVX2__)
            << "compiled for: AVX2 (-march=native)\n"
#elif defined(__x86_64__)
            << "compiled for: baseline x86-64 (portable build, -DLOOM_NATIVE=OFF)\n"
#endif
            << "cpu:         " << (cpu.empty() ? "unknown" : cpu) << "\n"
            << "cpu features: avx2 " << has("avx2") << ", fma " << has("fma") << ", avx512f " << has("avx512f")
            << ", avx512_bf16 " << has("avx512_bf16") << ", amx " << (flags.count("amx_tile") ? "yes" : "no") << "\n"
            << "threads:     " << get_num_threads() << " used by kernels, " << std::thread::hardware_concurrency()
            << " hardware threads\n"
            << "blas:        " << openblas_get_config() << "\n"
            << (dist::mpi_available() ? "MPI:         yes (mpirun -np N loom train ... --distributed)\n"
                                      : "MPI:         no (built without MPI: install libopenmpi-dev and rebuild)\n")
            << cuda::info_text();
  // Which kernel each family runs here: compiled in (LOOM_NATIVE) or picked at run time by CPUID.
  std::cout << "kernels:     compiled for " << cpu::compiled_isa()
            << (cpu::compiled_isa_supported() ? "" : " (NOT supported by this CPU: rebuild with -DLOOM_NATIVE=OFF)")
            << "\n";
  for (const auto& k : cpu::kernel_choices())
    std::cout << "  " << k.family << ": " << k.kernel << "; " << k.why << "\n";
  return 0;
}

}  // namespace loom::cli
