#include "loom/io/npy.h"

#include <cstring>
#include <fstream>
#include <sstream>

#include "loom/io/safetensors.h"
#include "loom/ops/creation.h"

namespace loom::io {

namespace {

const char* descr(DType d) {
  switch (d) {
    case DType::f32: return "<f4";
    case DType::f64: return "<f8";
    case DType::i64: return "<i8";
    case DType::i32: return "<i4";
    case DType::u8: return "|u1";
    case DType::boolean: return "|b1";
    default: return nullptr;
  }
}

}  // namespace

void write_npy(const std::string& path, const Tensor& t) {
  const char* d = descr(t.dtype());
  LOOM_CHECK(d != nullptr, path, ": .npy files are written for f32, f64, i64, i32, u8 and bool, not ", t.dtype());
  std::string shape = "(";
  for (int64_t i = 0; i < t.dim(); ++i) shape += std::to_string(t.size(i)) + (t.dim() == 1 ? "," : i + 1 < t.dim() ? ", " : "");
  shape += ")";
  std::string header = std::string("{'descr': '") + d + "', 'fortran_order': False, 'shape': " + shape + ", }";
  // Magic (6) + version (2) + length (2) + header, padded with spaces and a newline to a multiple of 64.
  const size_t total = ((10 + header.size() + 1 + 63) / 64) * 64;
  header.append(total - 10 - header.size() - 1, ' ');
  header += '\n';
  const Tensor c = t.contiguous();
  const size_t nbytes = size_t(c.numel()) * itemsize(c.dtype());
  std::string out = std::string("\x93NUMPY\x01\x00", 8);
  out += char(header.size() & 0xff);
  out += char((header.size() >> 8) & 0xff);
  out += header;
  out.append(static_cast<const char*>(c.raw_data()), nbytes);
  write_file_atomic(path, out);
}

Tensor read_npy(const std::string& path) {
  std::ifstream f(path, std::ios::binary);
  LOOM_CHECK(f.good(), path, ": cannot open");
  std::stringstream ss;
  ss << f.rdbuf();
  const std::string b = ss.str();
  LOOM_CHECK(b.size() >= 10 && b.compare(0, 6, "\x93NUMPY") == 0, path, ": not a .npy file (bad magic)");
  LOOM_CHECK(b[6] == 1, path, ": .npy version ", int(b[6]), " is not supported (1.0 is)");
  const size_t hl = size_t(uint8_t(b[8])) | size_t(uint8_t(b[9])) << 8;
  LOOM_CHECK(b.size() >= 10 + hl, path, ": truncated header");
  const std::string h = b.substr(10, hl);
  DType dt = DType::f32;
  bool found = false;
  for (DType d : {DType::f32, DType::f64, DType::i64, DType::i32, DType::u8, DType::boolean})
    if (h.find(std::string("'") + descr(d) + "'") != std::string::npos) dt = d, found = true;
  LOOM_CHECK(found, path, ": unsupported dtype in header ", h);
  LOOM_CHECK(h.find("'fortran_order': False") != std::string::npos, path, ": Fortran-order arrays are not supported");
  const size_t l = h.find('('), r = h.find(')');
  LOOM_CHECK(l != std::string::npos && r != std::string::npos && r > l, path, ": no shape in header ", h);
  Shape shape;
  std::stringstream dims(h.substr(l + 1, r - l - 1));
  std::string item;
  while (std::getline(dims, item, ','))
    if (item.find_first_not_of(' ') != std::string::npos) shape.push_back(std::stoll(item));
  Tensor t = empty(shape, {.dtype = dt});
  const size_t nbytes = size_t(t.numel()) * itemsize(dt);
  LOOM_CHECK(b.size() == 10 + hl + nbytes, path, ": expected ", nbytes, " data bytes for shape ", shape, ", found ",
             b.size() - 10 - hl);
  std::memcpy(t.raw_data(), b.data() + 10 + hl, nbytes);
  return t;
}

}  // namespace loom::io
