// What every libFuzzer target shares: a scratch file to hand the fuzzer's bytes to loom's path-based readers
// (the same functions the loom command calls), and the rule for exceptions.
//   extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
//     return fuzz::guarded([&] { data::read_idx(fuzz::scratch().write(data, size)); });
//   }
#pragma once
#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <exception>
#include <string>
#include <string_view>

#include "loom/core/error.h"

namespace fuzz {

// One file per process (libFuzzer's -fork/-jobs workers are separate processes), rewritten for every input.
class ScratchFile {
 public:
  explicit ScratchFile(const std::string& suffix);
  ~ScratchFile();
  // Replaces the file's contents; returns its path.
  const std::string& write(const void* data, size_t size);
  const std::string& write(std::string_view s) { return write(s.data(), s.size()); }
  const std::string& path() const { return path_; }

 private:
  std::string path_;
};

// A scratch folder (for readers that take a directory: config.json, encoder.json + vocab.bpe).
class ScratchDir {
 public:
  ScratchDir();
  ~ScratchDir();
  const std::string& path() const { return path_; }
  std::string put(const std::string& name, std::string_view contents);  // writes dir/name, returns its path

 private:
  std::string path_;
};

// Runs `body`. A loom::Error is the expected answer to bad input and is swallowed; any other exception
// (a raw nlohmann::json error, std::out_of_range, std::bad_alloc, ...) means a reader let an unexplained
// error through, so it aborts and libFuzzer records the input as a crash.
template <class F>
int guarded(F&& body) {
  try {
    body();
  } catch (const loom::Error&) {
  } catch (const std::exception& e) {
    std::fprintf(stderr, "fuzz: unexpected exception (not loom::Error): %s\n", e.what());
    std::abort();
  }
  return 0;
}

// Splits the input at the first occurrence of `sep` (the whole input and "" when absent): how targets that
// need two files (encoder.json + vocab.bpe) get both from one input.
std::pair<std::string_view, std::string_view> split2(std::string_view s, std::string_view sep);

}  // namespace fuzz
