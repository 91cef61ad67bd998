#include "loom/core/limits.h"

#include <sys/resource.h>

#include <algorithm>
#include <cerrno>
#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <string>

#include "loom/core/error.h"

namespace loom {

void check_size(const std::string& what, int64_t v, int64_t lo, int64_t hi) {
  LOOM_CHECK(v >= lo && v <= hi, what, " must be in [", lo, ", ", hi, "], got ", v);
}

namespace {

// A "Key:   123 kB" line of a /proc file, in bytes; -1 when absent.
int64_t proc_kb(const char* file, const std::string& key) {
  std::ifstream f(file);
  std::string line;
  while (std::getline(f, line))
    if (line.rfind(key + ":", 0) == 0) return std::atoll(line.c_str() + key.size() + 1) * 1024;
  return -1;
}

// The first number in a one-line file ("max" or unreadable: -1).
int64_t file_number(const char* path) {
  std::ifstream f(path);
  std::string s;
  if (!(f >> s) || s == "max") return -1;
  errno = 0;
  char* end = nullptr;
  const long long v = std::strtoll(s.c_str(), &end, 10);
  return errno || end == s.c_str() ? -1 : int64_t(v);
}

void take_min(int64_t& best, int64_t v) {
  if (v >= 0 && (best < 0 || v < best)) best = v;
}

}  // namespace

int64_t available_memory_bytes() {
  int64_t best = -1;
  take_min(best, proc_kb("/proc/meminfo", "MemAvailable"));
  // cgroup v2, then v1 (a container's limit is below the host's MemAvailable).
  const int64_t max2 = file_number("/sys/fs/cgroup/memory.max"), cur2 = file_number("/sys/fs/cgroup/memory.current");
  if (max2 > 0 && cur2 >= 0) take_min(best, std::max<int64_t>(max2 - cur2, 0));
  const int64_t max1 = file_number("/sys/fs/cgroup/memory/memory.limit_in_bytes"),
                cur1 = file_number("/sys/fs/cgroup/memory/memory.usage_in_bytes");
  if (max1 > 0 && max1 < (int64_t(1) << 60) && cur1 >= 0) take_min(best, std::max<int64_t>(max1 - cur1, 0));
  // ulimit -v / -d: address space left to this process.
  rlimit rl{};
  const int64_t mapped = proc_kb("/proc/self/status", "VmSize"), data = proc_kb("/proc/self/status", "VmData");
  if (getrlimit(RLIMIT_AS, &rl) == 0 && rl.rlim_cur != RLIM_INFINITY && mapped >= 0)
    take_min(best, std::max<int64_t>(int64_t(rl.rlim_cur) - mapped, 0));
  if (getrlimit(RLIMIT_DATA, &rl) == 0 && rl.rlim_cur != RLIM_INFINITY && data >= 0)
    take_min(best, std::max<int64_t>(int64_t(rl.rlim_cur) - data, 0));
  return best;
}

std::string format_bytes(double bytes) {
  char buf[64];
  if (bytes >= 1024.0 * 1024 * 1024)
    std::snprintf(buf, sizeof buf, "%.1f GiB", bytes / (1024.0 * 1024 * 1024));
  else
    std::snprintf(buf, sizeof buf, "%.0f MiB", bytes / (1024.0 * 1024));
  return buf;
}

void check_fits_in_memory(double bytes, const std::string& what) {
  const char* skip = std::getenv("LOOM_SKIP_MEMORY_CHECK");
  if (skip && std::string(skip) == "1") return;
  const int64_t avail = available_memory_bytes();
  if (avail < 0) return;  // cannot tell: let the allocator decide
  LOOM_CHECK(bytes <= double(avail), what, " needs about ", format_bytes(bytes), " of memory, and only ",
             format_bytes(double(avail)), " is available (make the model smaller; LOOM_SKIP_MEMORY_CHECK=1 skips "
             "this check)");
}

int64_t max_image_pixels() {
  const char* env = std::getenv("LOOM_MAX_IMAGE_PIXELS");
  if (!env || !*env) return limits::kDefaultMaxImagePixels;
  errno = 0;
  char* end = nullptr;
  const long long v = std::strtoll(env, &end, 10);
  LOOM_CHECK(errno == 0 && *end == '\0' && v > 0, "LOOM_MAX_IMAGE_PIXELS: expected a positive integer, got '", env,
             "'");
  return int64_t(v);
}

}  // namespace loom
