// GGUF v3 files, ggml's single-file model container (what llama.cpp loads): "GGUF", version 3, the tensor and
// key/value counts, typed metadata (numbers, bools, strings, arrays), tensor infos (name, dims in ggml's order:
// dims[0] is the row length, the fastest-moving index; ggml type id; offset into the data section), then the
// data section, every tensor at a multiple of general.alignment (32 unless the file says otherwise).
//   io::GGUFBuilder b;  b.set("general.architecture", io::GGUFValue::string("gpt2"));
//   b.add_tensor("output_norm.weight", io::GGMLType::f32, {768}, bytes);   b.save("model.gguf");
//   io::GGUFFile f = io::load_gguf("model.gguf");   f.value("gpt2.block_count").as_uint();  f.data(*f.tensor("..."));
// The reader validates the whole file up front (bounds, overflow, unknown types, duplicates, overlaps) and throws
// loom::Error naming the file and the problem; it never reads outside the bytes it was given.
#pragma once
#include <cstdint>
#include <map>
#include <memory>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace loom::io {

class MappedFile;  // mapped_file.h

// Metadata value types (gguf.h's gguf_type).
enum class GGUFType : uint32_t { u8 = 0, i8 = 1, u16 = 2, i16 = 3, u32 = 4, i32 = 5, f32 = 6, boolean = 7,
                                 string = 8, array = 9, u64 = 10, i64 = 11, f64 = 12 };
const char* gguf_type_name(GGUFType t);

// The tensor types loom reads and writes (ggml.h's ggml_type ids); others are refused by name.
enum class GGMLType : uint32_t { f32 = 0, f16 = 1, q4_0 = 2, q8_0 = 8 };
const char* ggml_type_name(GGMLType t);
// Bytes of `n` values of type t along a row (n a multiple of the block size for the block types).
uint64_t ggml_row_bytes(GGMLType t, uint64_t n);
uint64_t ggml_block_size(GGMLType t);  // values per block: 1 for f32/f16, 32 for q4_0/q8_0

struct GGUFValue {
  GGUFType type = GGUFType::u32;
  GGUFType elem = GGUFType::u8;  // arrays: the element type
  uint64_t u = 0;                // u8..u64 and bool
  int64_t i = 0;                 // i8..i64
  double f = 0;                  // f32, f64
  std::string s;                 // string
  std::vector<GGUFValue> items;  // array

  static GGUFValue uint32(uint32_t v);
  static GGUFValue int32(int32_t v);
  static GGUFValue float32(float v);
  static GGUFValue boolean(bool v);
  static GGUFValue string(std::string v);
  static GGUFValue strings(const std::vector<std::string>& v);
  static GGUFValue int32s(const std::vector<int32_t>& v);

  // Checked reads: any unsigned/non-negative signed integer type; any number; a string; throw naming `key`.
  uint64_t as_uint(const std::string& key) const;
  double as_double(const std::string& key) const;
  const std::string& as_string(const std::string& key) const;
};

struct GGUFTensorInfo {
  std::string name;
  std::vector<uint64_t> dims;  // ggml order: dims[0] is the row length
  GGMLType type = GGMLType::f32;
  uint64_t offset = 0;         // from the start of the data section
  uint64_t bytes = 0;          // computed from dims and type
  uint64_t elements() const;
};

struct GGUFFile {
  std::string path;  // for error messages
  uint32_t version = 3;
  uint64_t alignment = 32;
  std::vector<std::pair<std::string, GGUFValue>> kv;  // file order
  std::vector<GGUFTensorInfo> tensors;                 // file order
  // The whole file, in memory (parse_gguf) or mapped from disk (load_gguf). Shared, so copies of a GGUFFile, and the
  // views data() hands out, stay valid while any copy lives.
  std::shared_ptr<const std::string> owned;
  std::shared_ptr<const MappedFile> mapped;
  uint64_t data_start = 0;

  std::string_view bytes() const;
  // After a loader has copied tensor t out: hands t's mapped pages back to the kernel (the load then holds about one
  // tensor of the file at a time, not all of it); nothing for a file in memory. data(t) stays readable.
  // [from, from + n) of t's bytes only: a loader copying a large tensor in pieces releases each piece as it goes.
  void release(const GGUFTensorInfo& t, uint64_t from = 0, uint64_t n = UINT64_MAX) const;

  const GGUFValue* find(const std::string& key) const;  // nullptr when absent
  const GGUFValue& value(const std::string& key) const;  // throws naming the file and the missing key
  const GGUFTensorInfo* tensor(const std::string& name) const;
  std::string_view data(const GGUFTensorInfo& t) const;
};

// Maps the file (read-only, MAP_PRIVATE): nothing is read until a tensor's data is touched.
GGUFFile load_gguf(const std::string& path);
GGUFFile parse_gguf(std::string bytes, const std::string& name);
// True when the file starts with the GGUF magic (false for folders, missing or short files).
bool is_gguf_file(const std::string& path);

// Collects metadata and tensors, then writes them in the order given.
class GGUFBuilder {
 public:
  void set(const std::string& key, GGUFValue v);  // replaces an earlier value of the key
  // `data` must hold exactly ggml_row_bytes(type, dims[0]) * dims[1] * ... bytes.
  void add_tensor(const std::string& name, GGMLType type, std::vector<uint64_t> dims, std::string data);
  size_t tensor_count() const { return tensors_.size(); }
  std::string bytes() const;
  void save(const std::string& path) const;  // atomic (write_file_atomic)
  uint64_t alignment = 32;

 private:
  std::vector<std::pair<std::string, GGUFValue>> kv_;
  std::map<std::string, size_t> kv_index_;
  struct Tensor {
    std::string name;
    GGMLType type;
    std::vector<uint64_t> dims;
    std::string data;
  };
  std::vector<Tensor> tensors_;
};

}  // namespace loom::io
