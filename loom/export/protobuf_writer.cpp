#include "loom/export/protobuf_writer.h"

#include <bit>
#include <cstring>

namespace loom::onnx {

static_assert(std::endian::native == std::endian::little, "the protobuf writer copies floats as little-endian bytes");

void append_varint(std::string& out, uint64_t v) {
  while (v >= 0x80) {
    out.push_back(char(uint8_t(v) | 0x80));
    v >>= 7;
  }
  out.push_back(char(uint8_t(v)));
}

size_t varint_size(uint64_t v) {
  size_t n = 1;
  while (v >= 0x80) {
    v >>= 7;
    ++n;
  }
  return n;
}

void append_tag(std::string& out, uint32_t field, WireType type) {
  append_varint(out, (uint64_t(field) << 3) | uint64_t(type));
}

void ProtoWriter::int_field(uint32_t field, int64_t v) {
  append_tag(out_, field, WireType::varint);
  append_varint(out_, uint64_t(v));
}

void ProtoWriter::float_field(uint32_t field, float v) {
  append_tag(out_, field, WireType::fixed32);
  char b[4];
  std::memcpy(b, &v, 4);
  out_.append(b, 4);
}

void ProtoWriter::length_prefix(uint32_t field, uint64_t length) {
  append_tag(out_, field, WireType::length_delimited);
  append_varint(out_, length);
}

void ProtoWriter::bytes_field(uint32_t field, std::string_view bytes) {
  length_prefix(field, bytes.size());
  out_.append(bytes);
}

}  // namespace loom::onnx
