// The protobuf wire format, write side only: just what an ONNX file needs (varints, 32-bit floats,
// length-delimited bytes and nested messages). Repeated scalars are written one field per value (unpacked),
// as proto2's default, which is what onnx.proto declares. Fields are appended in the order
// they are written; a message is a ProtoWriter whose bytes become a length-delimited field of its parent.
//   onnx::ProtoWriter op;  op.string_field(1, "");  op.int_field(2, 17);        // OperatorSetIdProto
//   onnx::ProtoWriter model;  model.int_field(1, 8);  model.message_field(8, op);
//   io::write_file_atomic(path, model.bytes());
// Why not libprotobuf + protoc: ONNX needs seven messages and a handful of their fields, all written once in
// order; a 100-line encoder avoids a generated-code build step and a library dependency (docs/compression.md).
#pragma once
#include <cstdint>
#include <string>
#include <string_view>

namespace loom::onnx {

// Wire types of the protobuf encoding (the low three bits of a field's tag).
enum class WireType : uint32_t { varint = 0, fixed64 = 1, length_delimited = 2, fixed32 = 5 };

// Appends v as a base-128 varint (7 bits per byte, low group first, high bit = more bytes follow).
void append_varint(std::string& out, uint64_t v);
// The number of bytes append_varint writes for v (1 to 10).
size_t varint_size(uint64_t v);
// Appends a field's tag: (field << 3) | wire type, as a varint.
void append_tag(std::string& out, uint32_t field, WireType type);

class ProtoWriter {
 public:
  // int32/int64/enum/bool fields: negative values take ten bytes (two's complement as uint64), as protobuf's
  // int64 does (not zigzag: ONNX uses no sint fields).
  void int_field(uint32_t field, int64_t v);
  void float_field(uint32_t field, float v);  // little-endian IEEE 754, wire type fixed32
  void bytes_field(uint32_t field, std::string_view bytes);
  void string_field(uint32_t field, std::string_view s) { bytes_field(field, s); }
  void message_field(uint32_t field, const ProtoWriter& m) { bytes_field(field, m.bytes()); }
  // The header of a length-delimited field whose `length` payload bytes the caller appends next (raw tensor
  // data too large to copy through a nested writer).
  void length_prefix(uint32_t field, uint64_t length);
  void append_raw(std::string_view bytes) { out_.append(bytes); }
  void reserve(size_t n) { out_.reserve(n); }

  const std::string& bytes() const { return out_; }
  size_t size() const { return out_.size(); }
  std::string take() { return std::move(out_); }

 private:
  std::string out_;
};

}  // namespace loom::onnx
