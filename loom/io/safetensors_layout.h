// Where each tensor lies in a safetensors file, for loaders that copy the data out themselves from a mapping of the
// file (models/gpt_hf.cpp) instead of getting every tensor in memory at once (load_safetensors).
//   io::MappedFile m(path);
//   io::SafetensorsLayout l = io::parse_safetensors_layout(m.bytes(), path);
//   for (auto& e : l.entries) ... m.bytes().substr(e.begin, e.end - e.begin) ...
#pragma once
#include <functional>
#include <string>
#include <string_view>
#include <vector>

#include "loom/io/safetensors.h"

namespace loom::io {

struct SafetensorsEntry {
  std::string name;
  DType dtype = DType::f32;
  Shape shape;
  uint64_t begin = 0, end = 0;  // bytes from the start of the file
};
struct SafetensorsLayout {
  std::vector<SafetensorsEntry> entries;  // in the order of their data in the file
  Metadata metadata;
};

// Validates `bytes` (the whole file) as load_safetensors does, except the values of bool tensors, which the caller
// checks once it has copied them (check_safetensors_bools). No tensor data is copied.
SafetensorsLayout parse_safetensors_layout(std::string_view bytes, const std::string& name);
// The same from a reader of the file (read(offset, dst, n) fills dst with n bytes at offset) of `size` bytes. It asks
// for the 8-byte header length, then the JSON header, once each and in that order, and for nothing else: a caller
// that hashes what it hands out (io/run_safetensors.h) thus hashes exactly the header bytes this parse used.
using SafetensorsSource = std::function<void(uint64_t offset, void* dst, size_t n)>;
SafetensorsLayout parse_safetensors_layout(uint64_t size, const SafetensorsSource& read, const std::string& name);
// Throws naming `file` and `tensor` when a bool tensor holds a byte other than 0 or 1; other dtypes pass.
void check_safetensors_bools(const Tensor& t, const std::string& tensor, const std::string& file);

}  // namespace loom::io
