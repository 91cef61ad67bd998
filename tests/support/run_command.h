// Runs a command line through the shell for the CLI tests and captures what it printed.
//   loom::test::CommandResult r = loom::test::run_command(std::string(LOOM_BIN) + " info");
//   EXPECT_EQ(r.status, 0);  auto events = loom::test::json_lines(r.out);
#pragma once
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

namespace loom::test {

struct CommandResult {
  int status = -1;  // exit status; 128 + signal when killed; -1 when the shell could not start
  std::string out, err;
};

// stdout is read through a pipe, stderr through a temporary file (removed afterwards).
CommandResult run_command(const std::string& cmdline);

// Environment prefix for an `mpirun` command line: under the sanitizers, LSan reads the suppressions for Open MPI's
// own leaks (tests/support/lsan_mpi.supp; see tests/CMakeLists.txt for why each option); ignored otherwise.
std::string mpi_sanitizer_env();

// One JSON value per non-empty line (the `--json` output of loom commands).
std::vector<nlohmann::json> json_lines(const std::string& out);

}  // namespace loom::test
