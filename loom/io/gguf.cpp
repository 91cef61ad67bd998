#include "loom/io/gguf.h"
#include "loom/io/mapped_file.h"
#include "loom/io/run_file.h"
#include "loom/io/run_file_plain.h"

#include <algorithm>
#include <bit>
#include <cstring>
#include <fstream>
#include <limits>
#include <set>

#include "loom/core/error.h"
#include "loom/io/safetensors.h"

namespace loom::io {

// GGUF is little-endian; the data section is copied as is.
static_assert(std::endian::native == std::endian::little, "GGUF I/O assumes a little-endian machine");

namespace {

constexpr char kMagic[4] = {'G', 'G', 'U', 'F'};
constexpr uint32_t kMaxDims = 4;        // GGML_MAX_DIMS
constexpr int kMaxArrayDepth = 8;       // nested arrays are legal; a deep nest is an attack, not a model
constexpr uint64_t kMaxAlignment = 1u << 20;
// Array elements in one file, all arrays together: each element becomes a GGUFValue (~100 bytes), so this bounds
// what a small hostile file can make the reader allocate (~400 MB). Llama-3's 128k-token vocabulary needs ~400k.
constexpr uint64_t kMaxArrayElements = uint64_t(1) << 22;

bool known_gguf_type(uint32_t t) { return t <= uint32_t(GGUFType::f64); }

// Fixed-size values; 0 for string and array.
size_t scalar_size(GGUFType t) {
  switch (t) {
    case GGUFType::u8: case GGUFType::i8: case GGUFType::boolean: return 1;
    case GGUFType::u16: case GGUFType::i16: return 2;
    case GGUFType::u32: case GGUFType::i32: case GGUFType::f32: return 4;
    case GGUFType::u64: case GGUFType::i64: case GGUFType::f64: return 8;
    case GGUFType::string: case GGUFType::array: return 0;
  }
  return 0;
}

// ggml type ids loom knows by name, for an error that says what the file holds.
const char* other_ggml_name(uint32_t t) {
  switch (t) {
    case 3: return "q4_1";
    case 6: return "q5_0";
    case 7: return "q5_1";
    case 9: return "q8_1";
    case 10: return "q2_K";
    case 11: return "q3_K";
    case 12: return "q4_K";
    case 13: return "q5_K";
    case 14: return "q6_K";
    case 15: return "q8_K";
    case 24: return "i8";
    case 25: return "i16";
    case 26: return "i32";
    case 27: return "i64";
    case 28: return "f64";
    case 30: return "bf16";
    default: return nullptr;
  }
}

uint64_t pad_to(uint64_t x, uint64_t a) { return (x + a - 1) / a * a; }

// A bounds-checked cursor over the file's bytes: every read names the file and what it was reading.
class Reader {
 public:
  Reader(std::string_view b, const std::string& name) : b_(b), name_(name) {}
  uint64_t pos() const { return pos_; }
  uint64_t left() const { return b_.size() - pos_; }
  void need(uint64_t n, const char* what) const {
    LOOM_CHECK(n <= left(), name_, ": GGUF file is truncated: ", what, " needs ", n, " bytes at offset ", pos_,
               " but only ", left(), " remain (incomplete download or copy?)");
  }
  template <class T>
  T get(const char* what) {
    need(sizeof(T), what);
    T v;
    std::memcpy(&v, b_.data() + pos_, sizeof(T));
    pos_ += sizeof(T);
    return v;
  }
  std::string str(const char* what) {
    const uint64_t n = get<uint64_t>(what);
    need(n, what);
    std::string s(b_.substr(pos_, n));
    pos_ += n;
    return s;
  }

 private:
  std::string_view b_;
  const std::string& name_;
  uint64_t pos_ = 0;
};

GGUFValue read_value(Reader& r, GGUFType t, const std::string& key, const std::string& file, int depth,
                     uint64_t& elements) {
  GGUFValue v;
  v.type = t;
  switch (t) {
    case GGUFType::u8: v.u = r.get<uint8_t>("a u8 value"); break;
    case GGUFType::u16: v.u = r.get<uint16_t>("a u16 value"); break;
    case GGUFType::u32: v.u = r.get<uint32_t>("a u32 value"); break;
    case GGUFType::u64: v.u = r.get<uint64_t>("a u64 value"); break;
    case GGUFType::i8: v.i = r.get<int8_t>("an i8 value"); break;
    case GGUFType::i16: v.i = r.get<int16_t>("an i16 value"); break;
    case GGUFType::i32: v.i = r.get<int32_t>("an i32 value"); break;
    case GGUFType::i64: v.i = r.get<int64_t>("an i64 value"); break;
    case GGUFType::f32: v.f = r.get<float>("an f32 value"); break;
    case GGUFType::f64: v.f = r.get<double>("an f64 value"); break;
    case GGUFType::boolean: {
      const uint8_t b = r.get<uint8_t>("a bool value");
      LOOM_CHECK(b <= 1, file, ": GGUF key '", key, "' is a bool with byte value ", int(b), " (must be 0 or 1)");
      v.u = b;
      break;
    }
    case GGUFType::string: v.s = r.str("a string value"); break;
    case GGUFType::array: {
      LOOM_CHECK(depth < kMaxArrayDepth, file, ": GGUF key '", key, "' nests arrays more than ", kMaxArrayDepth,
                 " deep");
      const uint32_t et = r.get<uint32_t>("an array's element type");
      LOOM_CHECK(known_gguf_type(et), file, ": GGUF key '", key, "' is an array of unknown value type ", et);
      v.elem = GGUFType(et);
      const uint64_t n = r.get<uint64_t>("an array's length");
      // Every element takes at least one byte (8 for a string's length): a count the file cannot hold is
      // refused before anything is allocated for it.
      const uint64_t min_each = v.elem == GGUFType::string ? 8 : v.elem == GGUFType::array ? 12 : scalar_size(v.elem);
      LOOM_CHECK(n <= r.left() / min_each, file, ": GGUF key '", key, "' claims ", n,
                 " array elements, more than the rest of the file can hold (corrupt or truncated)");
      elements += n;
      LOOM_CHECK(elements <= kMaxArrayElements, file, ": GGUF metadata holds more than ", kMaxArrayElements,
                 " array elements in all (at key '", key, "'); loom does not read files this large");
      v.items.reserve(n);
      for (uint64_t k = 0; k < n; ++k) v.items.push_back(read_value(r, v.elem, key, file, depth + 1, elements));
      break;
    }
  }
  return v;
}


template <class T>
void put(std::string& out, T x) {
  out.append(reinterpret_cast<const char*>(&x), sizeof(T));
}
void put_str(std::string& out, const std::string& s) {
  put<uint64_t>(out, s.size());
  out += s;
}

void write_payload(std::string& out, const GGUFValue& v) {
  switch (v.type) {
    case GGUFType::u8: put<uint8_t>(out, uint8_t(v.u)); break;
    case GGUFType::u16: put<uint16_t>(out, uint16_t(v.u)); break;
    case GGUFType::u32: put<uint32_t>(out, uint32_t(v.u)); break;
    case GGUFType::u64: put<uint64_t>(out, v.u); break;
    case GGUFType::i8: put<int8_t>(out, int8_t(v.i)); break;
    case GGUFType::i16: put<int16_t>(out, int16_t(v.i)); break;
    case GGUFType::i32: put<int32_t>(out, int32_t(v.i)); break;
    case GGUFType::i64: put<int64_t>(out, v.i); break;
    case GGUFType::f32: put<float>(out, float(v.f)); break;
    case GGUFType::f64: put<double>(out, v.f); break;
    case GGUFType::boolean: put<uint8_t>(out, v.u ? 1 : 0); break;
    case GGUFType::string: put_str(out, v.s); break;
    case GGUFType::array:
      put<uint32_t>(out, uint32_t(v.elem));
      put<uint64_t>(out, v.items.size());
      for (const auto& e : v.items) {
        LOOM_CHECK(e.type == v.elem, "GGUF writer: an array of ", gguf_type_name(v.elem), " holds a ",
                   gguf_type_name(e.type));
        write_payload(out, e);
      }
      break;
  }
}

}  // namespace

const char* gguf_type_name(GGUFType t) {
  static const char* names[] = {"u8", "i8", "u16", "i16", "u32", "i32", "f32", "bool", "string", "array", "u64",
                                "i64", "f64"};
  return known_gguf_type(uint32_t(t)) ? names[uint32_t(t)] : "unknown";
}

const char* ggml_type_name(GGMLType t) {
  switch (t) {
    case GGMLType::f32: return "f32";
    case GGMLType::f16: return "f16";
    case GGMLType::q4_0: return "q4_0";
    case GGMLType::q8_0: return "q8_0";
  }
  return "unknown";
}

uint64_t ggml_block_size(GGMLType t) { return t == GGMLType::q4_0 || t == GGMLType::q8_0 ? 32 : 1; }

uint64_t ggml_row_bytes(GGMLType t, uint64_t n) {
  switch (t) {
    case GGMLType::f32: return n * 4;
    case GGMLType::f16: return n * 2;
    case GGMLType::q4_0: return n / 32 * 18;
    case GGMLType::q8_0: return n / 32 * 34;
  }
  LOOM_FAIL("ggml_row_bytes: unknown type");
}

GGUFValue GGUFValue::uint32(uint32_t v) { GGUFValue r; r.type = GGUFType::u32; r.u = v; return r; }
GGUFValue GGUFValue::int32(int32_t v) { GGUFValue r; r.type = GGUFType::i32; r.i = v; return r; }
GGUFValue GGUFValue::float32(float v) { GGUFValue r; r.type = GGUFType::f32; r.f = v; return r; }
GGUFValue GGUFValue::boolean(bool v) { GGUFValue r; r.type = GGUFType::boolean; r.u = v; return r; }
GGUFValue GGUFValue::string(std::string v) { GGUFValue r; r.type = GGUFType::string; r.s = std::move(v); return r; }
GGUFValue GGUFValue::strings(const std::vector<std::string>& v) {
  GGUFValue r;
  r.type = GGUFType::array, r.elem = GGUFType::string;
  r.items.reserve(v.size());
  for (const auto& s : v) r.items.push_back(string(s));
  return r;
}
GGUFValue GGUFValue::int32s(const std::vector<int32_t>& v) {
  GGUFValue r;
  r.type = GGUFType::array, r.elem = GGUFType::i32;
  r.items.reserve(v.size());
  for (int32_t x : v) r.items.push_back(int32(x));
  return r;
}

uint64_t GGUFValue::as_uint(const std::string& key) const {
  switch (type) {
    case GGUFType::u8: case GGUFType::u16: case GGUFType::u32: case GGUFType::u64: return u;
    case GGUFType::i8: case GGUFType::i16: case GGUFType::i32: case GGUFType::i64:
      LOOM_CHECK(i >= 0, "GGUF key '", key, "' must be a non-negative integer, got ", i);
      return uint64_t(i);
    default: LOOM_FAIL("GGUF key '", key, "' must be an integer, got a ", gguf_type_name(type));
  }
}

double GGUFValue::as_double(const std::string& key) const {
  if (type == GGUFType::f32 || type == GGUFType::f64) return f;
  if (type == GGUFType::i8 || type == GGUFType::i16 || type == GGUFType::i32 || type == GGUFType::i64) return double(i);
  if (type == GGUFType::string || type == GGUFType::array || type == GGUFType::boolean)
    LOOM_FAIL("GGUF key '", key, "' must be a number, got a ", gguf_type_name(type));
  return double(u);
}

const std::string& GGUFValue::as_string(const std::string& key) const {
  LOOM_CHECK(type == GGUFType::string, "GGUF key '", key, "' must be a string, got a ", gguf_type_name(type));
  return s;
}

uint64_t GGUFTensorInfo::elements() const {
  uint64_t n = 1;
  for (uint64_t d : dims) n *= d;
  return n;
}

const GGUFValue* GGUFFile::find(const std::string& key) const {
  for (const auto& [k, v] : kv)
    if (k == key) return &v;
  return nullptr;
}

const GGUFValue& GGUFFile::value(const std::string& key) const {
  const GGUFValue* v = find(key);
  LOOM_CHECK(v, path, ": GGUF metadata has no key '", key, "'");
  return *v;
}

const GGUFTensorInfo* GGUFFile::tensor(const std::string& name) const {
  for (const auto& t : tensors)
    if (t.name == name) return &t;
  return nullptr;
}

std::string_view GGUFFile::bytes() const {
  if (mapped) return mapped->bytes();
  return owned ? std::string_view(*owned) : std::string_view();
}

std::string_view GGUFFile::data(const GGUFTensorInfo& t) const { return bytes().substr(data_start + t.offset, t.bytes); }

void GGUFFile::release(const GGUFTensorInfo& t, uint64_t from, uint64_t n) const {
  if (!mapped || from >= t.bytes) return;
  mapped->release(data_start + t.offset + from, std::min(n, t.bytes - from));
}

namespace {

// Reads the header of f.bytes() into f and checks every tensor lies inside the file.
void parse_into(GGUFFile& f, const std::string& name) {
  const std::string_view file = f.bytes();
  Reader r(file, name);
  r.need(4, "the magic");
  LOOM_CHECK(std::memcmp(file.data(), kMagic, 4) == 0, name, ": not a GGUF file (the first 4 bytes are not \"GGUF\")");
  r.get<uint32_t>("the magic");
  f.version = r.get<uint32_t>("the version");
  LOOM_CHECK(f.version == 3 || f.version == 2, name, ": GGUF version ", f.version,
             " is not supported (loom reads versions 2 and 3; re-convert the model with a current llama.cpp)");
  const uint64_t n_tensors = r.get<uint64_t>("the tensor count");
  const uint64_t n_kv = r.get<uint64_t>("the metadata count");
  // The smallest key/value is 8 (key length) + 4 (type) + 1 bytes; the smallest tensor info 8 + 4 + 4 + 8.
  LOOM_CHECK(n_kv <= r.left() / 13, name, ": GGUF header claims ", n_kv, " metadata entries, more than the file can hold");
  LOOM_CHECK(n_tensors <= r.left() / 24, name, ": GGUF header claims ", n_tensors, " tensors, more than the file can hold");

  std::set<std::string> keys;
  uint64_t array_elements = 0;
  for (uint64_t k = 0; k < n_kv; ++k) {
    std::string key = r.str("a metadata key");
    LOOM_CHECK(keys.insert(key).second, name, ": GGUF metadata key '", key, "' appears twice");
    const uint32_t t = r.get<uint32_t>("a metadata value type");
    LOOM_CHECK(known_gguf_type(t), name, ": GGUF key '", key, "' has unknown value type ", t);
    GGUFValue v = read_value(r, GGUFType(t), key, name, 0, array_elements);
    f.kv.emplace_back(std::move(key), std::move(v));
  }
  if (const GGUFValue* a = f.find("general.alignment")) {
    LOOM_CHECK(a->type == GGUFType::u32, name, ": general.alignment must be a u32, got a ", gguf_type_name(a->type));
    LOOM_CHECK(a->u > 0 && std::has_single_bit(a->u) && a->u <= kMaxAlignment, name, ": general.alignment ", a->u,
               " must be a power of two (at most ", kMaxAlignment, ")");
    f.alignment = a->u;
  }

  std::set<std::string> names;
  for (uint64_t k = 0; k < n_tensors; ++k) {
    GGUFTensorInfo t;
    t.name = r.str("a tensor name");
    LOOM_CHECK(names.insert(t.name).second, name, ": GGUF tensor '", t.name, "' appears twice");
    const uint32_t nd = r.get<uint32_t>("a tensor's dimension count");
    LOOM_CHECK(nd >= 1 && nd <= kMaxDims, name, ": GGUF tensor '", t.name, "' has ", nd, " dimensions (1 to ",
               kMaxDims, " allowed)");
    uint64_t elements = 1;
    for (uint32_t d = 0; d < nd; ++d) {
      const uint64_t n = r.get<uint64_t>("a tensor dimension");
      LOOM_CHECK(n <= uint64_t(std::numeric_limits<int64_t>::max()) && (n == 0 || elements <= uint64_t(std::numeric_limits<int64_t>::max()) / n),
                 name, ": GGUF tensor '", t.name, "' has dimensions whose product overflows");
      elements *= n;
      t.dims.push_back(n);
    }
    const uint32_t ty = r.get<uint32_t>("a tensor type");
    if (ty != 0 && ty != 1 && ty != 2 && ty != 8) {
      const char* other = other_ggml_name(ty);
      if (other) LOOM_FAIL(name, ": GGUF tensor '", t.name, "' has ggml type ", other, ", which loom does not read (it reads f32, f16, q8_0, q4_0; requantize with llama-quantize)");
      LOOM_FAIL(name, ": GGUF tensor '", t.name, "' has unknown ggml type id ", ty);
    }
    t.type = GGMLType(ty);
    const uint64_t bs = ggml_block_size(t.type);
    LOOM_CHECK(t.dims[0] % bs == 0, name, ": GGUF tensor '", t.name, "' is ", ggml_type_name(t.type),
               " but its row length ", t.dims[0], " is not a multiple of the block size ", bs);
    // Bytes: the row bytes times the other dims; every factor is below 2^63 and the total bounded by the file.
    uint64_t bytes = ggml_row_bytes(t.type, t.dims[0]);
    for (size_t d = 1; d < t.dims.size(); ++d) {
      LOOM_CHECK(t.dims[d] == 0 || bytes <= file.size() / t.dims[d], name, ": GGUF tensor '", t.name,
                 "' is larger than the whole file (truncated or corrupt)");
      bytes *= t.dims[d];
    }
    t.bytes = bytes;
    t.offset = r.get<uint64_t>("a tensor offset");
    LOOM_CHECK(t.offset % f.alignment == 0, name, ": GGUF tensor '", t.name, "' starts at offset ", t.offset,
               ", not a multiple of the alignment ", f.alignment);
    f.tensors.push_back(std::move(t));
  }

  f.data_start = pad_to(r.pos(), f.alignment);
  // Even a file whose tensors are all empty must reach the (padded) start of its data section.
  LOOM_CHECK(f.tensors.empty() || f.data_start <= file.size(), name, ": GGUF file is truncated: its data section ",
             "starts at offset ", f.data_start, " but the file has ", file.size(), " bytes");
  const uint64_t data_size = file.size() >= f.data_start ? file.size() - f.data_start : 0;
  // Inside the data section, and no two tensors share bytes.
  std::vector<std::pair<uint64_t, const GGUFTensorInfo*>> spans;
  for (const auto& t : f.tensors) {
    LOOM_CHECK(t.offset <= data_size && t.bytes <= data_size - t.offset, name, ": GGUF tensor '", t.name, "' (",
               t.bytes, " bytes at data offset ", t.offset, ") runs past the end of the file (data section ",
               data_size, " bytes; truncated?)");
    spans.emplace_back(t.offset, &t);
  }
  std::sort(spans.begin(), spans.end(), [](auto& a, auto& b) { return a.first < b.first; });
  for (size_t k = 1; k < spans.size(); ++k)
    LOOM_CHECK(spans[k - 1].first + spans[k - 1].second->bytes <= spans[k].first, name, ": GGUF tensors '",
               spans[k - 1].second->name, "' and '", spans[k].second->name, "' overlap");
}

}  // namespace

GGUFFile parse_gguf(std::string bytes, const std::string& name) {
  GGUFFile f;
  f.path = name;
  f.owned = std::make_shared<const std::string>(std::move(bytes));
  parse_into(f, name);
  return f;
}

GGUFFile load_gguf(const std::string& path) {
  LOOM_CHECK(std::ifstream(path, std::ios::binary).good(), path, ": cannot open the GGUF file (does it exist?)");
  // A GGUF inside a checked run (a manifest beside it, a required signature, encrypted) goes through the run-file
  // reader like every other run file (run_file.h): read whole and verified before a byte is parsed. Only a plain
  // file is mapped unchecked.
  if (!run_file_is_plain(path)) return parse_gguf(read_run_file(path), path);
  GGUFFile f;
  f.path = path;
  f.mapped = std::make_shared<const MappedFile>(path);
  parse_into(f, path);
  return f;
}

bool is_gguf_file(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  char m[4] = {};
  return in && in.read(m, 4) && std::memcmp(m, kMagic, 4) == 0;
}

void GGUFBuilder::set(const std::string& key, GGUFValue v) {
  auto it = kv_index_.find(key);
  if (it != kv_index_.end()) {
    kv_[it->second].second = std::move(v);
    return;
  }
  kv_index_[key] = kv_.size();
  kv_.emplace_back(key, std::move(v));
}

void GGUFBuilder::add_tensor(const std::string& name, GGMLType type, std::vector<uint64_t> dims, std::string data) {
  LOOM_CHECK(!dims.empty() && dims.size() <= kMaxDims, "GGUF writer: tensor '", name, "' needs 1 to 4 dims");
  LOOM_CHECK(dims[0] % ggml_block_size(type) == 0, "GGUF writer: tensor '", name, "' row length ", dims[0],
             " is not a multiple of the ", ggml_type_name(type), " block size");
  uint64_t bytes = ggml_row_bytes(type, dims[0]);
  for (size_t d = 1; d < dims.size(); ++d) bytes *= dims[d];
  LOOM_CHECK(bytes == data.size(), "GGUF writer: tensor '", name, "' should hold ", bytes, " bytes, got ", data.size());
  for (const auto& t : tensors_) LOOM_CHECK(t.name != name, "GGUF writer: tensor '", name, "' added twice");
  tensors_.push_back({name, type, std::move(dims), std::move(data)});
}

std::string GGUFBuilder::bytes() const {
  LOOM_CHECK(alignment > 0 && std::has_single_bit(alignment), "GGUF writer: alignment must be a power of two");
  std::string out;
  out.append(kMagic, 4);
  put<uint32_t>(out, 3);
  put<uint64_t>(out, tensors_.size());
  // general.alignment is written whenever it is not the default, so readers place the data where it is.
  const bool add_alignment = alignment != 32 && !kv_index_.count("general.alignment");
  put<uint64_t>(out, kv_.size() + (add_alignment ? 1 : 0));
  for (const auto& [k, v] : kv_) {
    put_str(out, k);
    put<uint32_t>(out, uint32_t(v.type));
    write_payload(out, v);
  }
  if (add_alignment) {
    put_str(out, "general.alignment");
    put<uint32_t>(out, uint32_t(GGUFType::u32));
    put<uint32_t>(out, uint32_t(alignment));
  }
  uint64_t offset = 0;
  for (const auto& t : tensors_) {
    put_str(out, t.name);
    put<uint32_t>(out, uint32_t(t.dims.size()));
    for (uint64_t d : t.dims) put<uint64_t>(out, d);
    put<uint32_t>(out, uint32_t(t.type));
    put<uint64_t>(out, offset);
    offset = pad_to(offset + t.data.size(), alignment);
  }
  out.resize(pad_to(out.size(), alignment), '\0');
  for (const auto& t : tensors_) {
    out += t.data;
    out.resize(pad_to(out.size(), alignment), '\0');
  }
  return out;
}

void GGUFBuilder::save(const std::string& path) const { write_file_atomic(path, bytes()); }

}  // namespace loom::io
