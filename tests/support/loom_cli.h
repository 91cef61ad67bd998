// The loom command as the CLI tests run it. LOOM_BIN (the built binary's path) is defined for each CLI test target
// in tests/CMakeLists.txt.
//   loom::test::CommandResult r = loom::test::loom_cmd("eval --checkpoint " + run.string());
#pragma once
#include <gtest/gtest.h>

#include <filesystem>
#include <map>
#include <string>

#include <nlohmann/json.hpp>

#include "run_command.h"
#include "scratch.h"

namespace loom::test {

// Runs `loom ARGS` through the shell (the caller quotes arguments where needed).
inline CommandResult loom_cmd(const std::string& args) { return run_command(std::string(LOOM_BIN) + " " + args); }

// The run folder of `loom TRAIN_ARGS --out <scratch>/NAME`, trained on the first call only (training is the slow
// part of a CLI test; the tests of one program share it).
inline const std::filesystem::path& trained_once(const std::string& name, const std::string& train_args) {
  static std::map<std::string, std::filesystem::path> runs;
  auto it = runs.find(name);
  if (it != runs.end()) return it->second;
  const std::filesystem::path out = scratch(name);
  const CommandResult r = loom_cmd(train_args + " --out " + out.string());
  EXPECT_EQ(r.status, 0) << r.err;
  return runs.emplace(name, out).first->second;
}

// `loom eval --checkpoint RUN EVAL_ARGS --json`, parsed (null, with the failure reported, when it fails).
inline nlohmann::json eval_json(const std::filesystem::path& run, const std::string& eval_args) {
  const CommandResult r = loom_cmd("eval --checkpoint " + run.string() + " " + eval_args + " --json");
  EXPECT_EQ(r.status, 0) << r.err;
  return r.status == 0 ? nlohmann::json::parse(r.out) : nlohmann::json();
}

}  // namespace loom::test
