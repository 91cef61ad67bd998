// Whole-file reads for the dataset readers, with errors that name the file.
//   std::string bytes = data::read_file_maybe_gzip("/usr/share/datasets/fashion-mnist/t10k-labels-idx1-ubyte.gz");
//   std::string raw = data::read_file("data_batch_1.bin");
#pragma once
#include <string>
#include <string_view>

namespace loom::data {

// The whole file; throws loom::Error naming `path` when it cannot be opened or read completely.
std::string read_file(const std::string& path);
// Inflates gzip data (all members); `path` is only used in error messages. A truncated stream, a bad
// checksum or trailing garbage throws.
std::string gunzip(std::string_view gz, const std::string& path);
// read_file, then gunzip when the content starts with the gzip magic bytes (whatever the file is called).
std::string read_file_maybe_gzip(const std::string& path);

}  // namespace loom::data
