#include "fuzz_common.h"

#include <filesystem>
#include <fstream>
#include <utility>

#include <unistd.h>

namespace fuzz {

namespace {
std::string scratch_root() {
  // $FUZZ_SCRATCH, else /dev/shm (memory, so millions of rewrites cost no disk), else the temp folder.
  if (const char* d = std::getenv("FUZZ_SCRATCH")) return d;
  std::error_code ec;
  if (std::filesystem::is_directory("/dev/shm", ec)) return "/dev/shm";
  return std::filesystem::temp_directory_path().string();
}
}  // namespace

ScratchFile::ScratchFile(const std::string& suffix)
    : path_(scratch_root() + "/loom-fuzz-" + std::to_string(::getpid()) + suffix) {}

ScratchFile::~ScratchFile() { std::remove(path_.c_str()); }

const std::string& ScratchFile::write(const void* data, size_t size) {
  std::FILE* f = std::fopen(path_.c_str(), "wb");
  if (!f || (size && std::fwrite(data, 1, size, f) != size) || std::fclose(f) != 0) {
    std::perror(path_.c_str());
    std::abort();  // the harness itself failed: not a finding about loom
  }
  return path_;
}

ScratchDir::ScratchDir() : path_(scratch_root() + "/loom-fuzz-dir-" + std::to_string(::getpid())) {
  std::filesystem::remove_all(path_);
  std::filesystem::create_directories(path_);
}

ScratchDir::~ScratchDir() {
  std::error_code ec;
  std::filesystem::remove_all(path_, ec);
}

std::string ScratchDir::put(const std::string& name, std::string_view contents) {
  const std::string p = path_ + "/" + name;
  std::ofstream(p, std::ios::binary | std::ios::trunc).write(contents.data(), std::streamsize(contents.size()));
  return p;
}

std::pair<std::string_view, std::string_view> split2(std::string_view s, std::string_view sep) {
  const size_t at = s.find(sep);
  if (at == std::string_view::npos) return {s, {}};
  return {s.substr(0, at), s.substr(at + sep.size())};
}

}  // namespace fuzz
