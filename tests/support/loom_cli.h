// The loom command as the CLI tests run it. LOOM_BIN (the built binary's path) is defined for each CLI test target
// in tests/CMakeLists.txt.
//   loom::test::CommandResult r = loom::test::loom_cmd("eval --checkpoint " + run.string());
#pragma once
#include <string>

#include "run_command.h"
#include "scratch.h"

namespace loom::test {

// Runs `loom ARGS` through the shell (the caller quotes arguments where needed).
inline CommandResult loom_cmd(const std::string& args) { return run_command(std::string(LOOM_BIN) + " " + args); }

}  // namespace loom::test
