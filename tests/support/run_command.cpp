#include "run_command.h"

#include <sys/wait.h>
#include <unistd.h>

#include <cstdio>
#include <filesystem>
#include <fstream>
#include <sstream>

namespace loom::test {

namespace fs = std::filesystem;

CommandResult run_command(const std::string& cmdline) {
  static int n = 0;
  const fs::path err =
      fs::temp_directory_path() / ("loom_test_cmd_err_" + std::to_string(getpid()) + "_" + std::to_string(n++));
  CommandResult r;
  FILE* p = popen((cmdline + " 2>" + err.string()).c_str(), "r");
  if (!p) return r;
  char buf[4096];
  for (size_t k; (k = fread(buf, 1, sizeof buf, p)) > 0;) r.out.append(buf, k);
  const int st = pclose(p);
  r.status = WIFEXITED(st) ? WEXITSTATUS(st) : 128 + WTERMSIG(st);
  std::ifstream f(err, std::ios::binary);
  r.err.assign(std::istreambuf_iterator<char>(f), {});
  fs::remove(err);
  return r;
}

std::vector<nlohmann::json> json_lines(const std::string& out) {
  std::vector<nlohmann::json> v;
  std::istringstream in(out);
  for (std::string line; std::getline(in, line);)
    if (!line.empty()) v.push_back(nlohmann::json::parse(line));
  return v;
}

std::string mpi_sanitizer_env() {
  return std::string("LSAN_OPTIONS=suppressions=") + LOOM_TEST_DIR + "/support/lsan_mpi.supp:print_suppressions=0"
         " ASAN_OPTIONS=detect_leaks=1:abort_on_error=1:fast_unwind_on_malloc=0"
         " OMPI_MCA_mca_base_component_disable_dlclose=1 ";
}

}  // namespace loom::test
