// A per-process scratch folder for test files, removed when the test program exits, and a file writer.
//   fs::path p = loom::test::scratch("corpus.txt");   // <tmp>/loom_test_<pid>/corpus.txt
//   loom::test::write_file(p, "In the beginning\n");
#pragma once
#include <filesystem>
#include <string>

namespace loom::test {

// `name` inside the scratch folder (created on first use).
std::filesystem::path scratch(const std::string& name);

// Writes `s` byte for byte (binary mode, so \r\n stays as written).
void write_file(const std::filesystem::path& p, const std::string& s);

}  // namespace loom::test
