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

}  // namespace loom::test
