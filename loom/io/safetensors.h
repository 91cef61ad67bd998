// safetensors files: an 8-byte little-endian header length, a JSON header
// {name: {"dtype", "shape", "data_offsets": [begin, end]}, "__metadata__": {str: str}}, then raw
// little-endian data. The format PyTorch / Hugging Face checkpoints use, so weights move between them.
//   io::save_safetensors("model.safetensors", {{"fc.weight", w}, {"fc.bias", b}}, {{"format", "pt"}});
//   io::SafetensorsFile f = io::load_safetensors("model.safetensors");   // f.tensors in file order, f.metadata
#pragma once
#include <map>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "loom/core/tensor.h"

namespace loom::io {

using NamedTensors = std::vector<std::pair<std::string, Tensor>>;
using Metadata = std::map<std::string, std::string>;

struct SafetensorsFile {
  NamedTensors tensors;  // in the order of their data in the file (the order they were saved in)
  Metadata metadata;
  const Tensor* find(const std::string& name) const;  // nullptr when absent
};

// Writes atomically (see write_file_atomic): a crash leaves either the old file or the new one. Names must be
// unique, non-empty and not "__metadata__". Tensors are written contiguous, in the given order.
void save_safetensors(const std::string& path, const NamedTensors& tensors, const Metadata& metadata = {});

// Reads and validates the whole file before returning: header length against the file size, JSON structure,
// known dtypes, shapes, offsets inside the data and covering it without overlaps or gaps, byte counts equal
// to numel * itemsize, bool bytes 0/1. Any problem throws loom::Error naming the file.
SafetensorsFile load_safetensors(const std::string& path);

// Serialises to / parses from memory (what the file functions use; `name` appears in errors).
std::string safetensors_bytes(const NamedTensors& tensors, const Metadata& metadata = {});
SafetensorsFile parse_safetensors(std::string_view bytes, const std::string& name);

// Replaces `path` with `contents` atomically: writes PATH.tmp, fsyncs it, renames it over PATH and fsyncs the
// directory, so a crash at any point leaves the old file or the new one, never a torn one.
void write_file_atomic(const std::string& path, std::string_view contents);

}  // namespace loom::io
