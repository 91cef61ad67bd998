#include "scratch.h"

#include <unistd.h>

#include <fstream>

namespace loom::test {

namespace fs = std::filesystem;

namespace {
struct ScratchDir {
  fs::path path = fs::temp_directory_path() / ("loom_test_" + std::to_string(::getpid()));
  ScratchDir() { fs::create_directories(path); }
  ~ScratchDir() {
    std::error_code ec;
    fs::remove_all(path, ec);
  }
};
}  // namespace

fs::path scratch(const std::string& name) {
  static const ScratchDir dir;
  return dir.path / name;
}

std::string slurp(const fs::path& p) {
  std::ifstream f(p, std::ios::binary);
  return std::string(std::istreambuf_iterator<char>(f), {});
}

nlohmann::json read_json(const fs::path& p) { return nlohmann::json::parse(slurp(p)); }

void write_file(const fs::path& p, const std::string& s) {
  std::ofstream f(p, std::ios::binary);
  f << s;
}

}  // namespace loom::test
