// A per-process scratch folder for test files, removed when the test program exits, and file helpers.
//   fs::path p = loom::test::scratch("corpus.txt");   // <tmp>/loom_test_<pid>/corpus.txt
//   loom::test::write_file(p, "In the beginning\n");
//   std::string bytes = loom::test::slurp(p);  nlohmann::json cfg = loom::test::read_json(run / "config.json");
#pragma once
#include <filesystem>
#include <string>

#include <nlohmann/json.hpp>

namespace loom::test {

// `name` inside the scratch folder (created on first use).
std::filesystem::path scratch(const std::string& name);

// Writes `s` byte for byte (binary mode, so \r\n stays as written).
void write_file(const std::filesystem::path& p, const std::string& s);

// The whole file, byte for byte ("" when it cannot be opened: the caller's expectation then fails visibly).
std::string slurp(const std::filesystem::path& p);

// The file parsed as JSON (throws nlohmann::json::parse_error, which fails the test, on bad JSON).
nlohmann::json read_json(const std::filesystem::path& p);

}  // namespace loom::test
