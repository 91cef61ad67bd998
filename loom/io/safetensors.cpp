#include "loom/io/safetensors.h"

#include "loom/io/json_fields.h"
#include "loom/io/run_file.h"
#include "loom/io/safetensors_layout.h"

#include <algorithm>
#include <bit>
#include <cerrno>
#include <cstring>
#include <filesystem>
#include <functional>
#include <set>

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <nlohmann/json.hpp>

namespace loom::io {

// The data section is the machine's memory as is; a big-endian port would need byte swaps here.
static_assert(std::endian::native == std::endian::little, "safetensors I/O assumes a little-endian machine");

namespace {

using ojson = nlohmann::ordered_json;
// A sink receives the file's bytes in order (write to a file descriptor, or append to a string).
using Sink = std::function<void(const void*, size_t)>;
// A source reads n bytes at an offset of the file (pread, or memcpy out of a buffer).
using Source = std::function<void(uint64_t, void*, size_t)>;

constexpr uint64_t kMaxHeader = 100u << 20;  // the reference implementation's limit as well

const char* st_name(DType t) {
  switch (t) {
    case DType::f32: return "F32";
    case DType::f64: return "F64";
    case DType::i64: return "I64";
    case DType::i32: return "I32";
    case DType::u8: return "U8";
    case DType::boolean: return "BOOL";
    case DType::bf16: return "BF16";
    case DType::f16: return "F16";
  }
  LOOM_FAIL("safetensors: unknown dtype");
}

DType st_dtype(const std::string& s, const std::string& file, const std::string& tensor) {
  for (DType t : {DType::f32, DType::f64, DType::i64, DType::i32, DType::u8, DType::boolean, DType::bf16, DType::f16})
    if (s == st_name(t)) return t;
  static const std::set<std::string> other = {"I8", "I16", "U16", "U32", "U64", "F8_E4M3", "F8_E5M2", "C64"};
  LOOM_CHECK(!other.count(s), file, ": tensor '", tensor, "' has dtype ", s, ", which loom does not support");
  LOOM_FAIL(file, ": tensor '", tensor, "' has unknown dtype '", s, "'");
}

// The header and the contiguous tensors to write; built (and every name checked) before any file is touched.
struct Plan {
  std::string header;
  std::vector<Tensor> data;
};

Plan plan(const NamedTensors& tensors, const Metadata& metadata) {
  // The header is written entry by entry rather than built as one ordered_json: that object's insert searches
  // every earlier key, quadratic in the number of tensors.
  Plan p;
  p.header = "{";
  if (!metadata.empty()) p.header += "\"__metadata__\":" + nlohmann::json(metadata).dump();
  std::set<std::string> seen;
  uint64_t off = 0;
  for (const auto& [name, t0] : tensors) {
    LOOM_CHECK(!name.empty() && name != "__metadata__", "save_safetensors: invalid tensor name '", name, "'");
    LOOM_CHECK(seen.insert(name).second, "save_safetensors: tensor name '", name, "' appears twice");
    LOOM_CHECK(t0.defined(), "save_safetensors: tensor '", name, "' is undefined");
    Tensor t = t0.detach().contiguous();
    const uint64_t bytes = uint64_t(t.numel()) * itemsize(t.dtype());
    const ojson entry = {{"dtype", st_name(t.dtype())}, {"shape", t.shape()}, {"data_offsets", {off, off + bytes}}};
    if (p.header.size() > 1) p.header += ',';
    p.header += nlohmann::json(name).dump() + ":" + entry.dump();
    off += bytes;
    p.data.push_back(t);
  }
  p.header += '}';
  // Padding the header with spaces (the format allows trailing whitespace) so the data starts on a 64-byte boundary
  // keeps it aligned for readers that map the file: HF's writer pads to 8; 64 is Storage's alignment, which lets a
  // loader use a tensor where it lies (io/mapped_weights.h) when the tensors before it are whole multiples of 64 bytes.
  p.header.append((64 - (8 + p.header.size()) % 64) % 64, ' ');
  return p;
}

void emit(const Plan& p, const Sink& sink) {
  unsigned char len[8];
  for (int i = 0; i < 8; ++i) len[i] = uint8_t(uint64_t(p.header.size()) >> (8 * i));
  sink(len, 8);
  sink(p.header.data(), p.header.size());
  for (const Tensor& t : p.data)
    if (t.numel()) sink(t.raw_data(), size_t(t.numel()) * itemsize(t.dtype()));
}

using Entry = SafetensorsEntry;  // offsets relative to the data section until layout() returns

uint64_t json_u64(const nlohmann::json& v, const std::string& file, const std::string& tensor, const char* what) {
  LOOM_CHECK(v.is_number_unsigned() || (v.is_number_integer() && v.get<int64_t>() >= 0), file, ": tensor '", tensor,
             "' has a bad ", what, " entry ", v.dump(), " (expected a non-negative integer)");
  return v.get<uint64_t>();
}

// A SAX handler that keeps the top-level object's keys in order and notes the first repeated one.
struct TopLevelKeys : nlohmann::json_sax<nlohmann::json> {
  std::vector<std::string> order;
  std::set<std::string> seen;
  std::string dup;
  int depth = 0;
  bool null() override { return true; }
  bool boolean(bool) override { return true; }
  bool number_integer(number_integer_t) override { return true; }
  bool number_unsigned(number_unsigned_t) override { return true; }
  bool number_float(number_float_t, const string_t&) override { return true; }
  bool string(string_t&) override { return true; }
  bool binary(binary_t&) override { return true; }
  bool start_object(std::size_t) override { return ++depth, true; }
  bool end_object() override { return --depth, true; }
  bool start_array(std::size_t) override { return ++depth, true; }
  bool end_array() override { return --depth, true; }
  bool key(string_t& k) override {
    if (depth == 1) {
      if (seen.insert(k).second) order.push_back(k);
      else if (dup.empty()) dup = k;
    }
    return true;
  }
  std::string error;  // the parser's message when the text is not JSON
  bool parse_error(std::size_t, const std::string&, const nlohmann::detail::exception& e) override {
    error = e.what();
    return false;
  }
};

// Everything the header says, checked against the file's size; tensor offsets are made absolute (from the start of
// the file) on return.
SafetensorsLayout layout(uint64_t size, const Source& read, const std::string& file) {
  LOOM_CHECK(size >= 8, file, ": file is too short (", size, " bytes) to hold the 8-byte header length");
  unsigned char len[8];
  read(0, len, 8);
  uint64_t n = 0;
  for (int i = 0; i < 8; ++i) n |= uint64_t(len[i]) << (8 * i);
  LOOM_CHECK(n <= size - 8, file, ": header length ", n, " is larger than the rest of the file (", size - 8,
             " bytes); the file is truncated or not safetensors");
  LOOM_CHECK(n >= 2 && n <= kMaxHeader, file, ": implausible header length ", n);
  std::string h(n, '\0');
  read(8, h.data(), n);
  // The header is parsed into a std::map-backed json (O(log n) per key): ordered_json's vector-backed object
  // searches every earlier key on each insert, and nlohmann's callback parser rescans the parent object at the end
  // of every child object, so either made a 300k-tensor header take minutes. A first SAX pass (linear) records
  // the top-level keys in file order, which the map loses (it breaks ties between empty tensors below), and
  // catches duplicate names, which would silently replace each other.
  TopLevelKeys keys;
  nlohmann::json header;
  if (!nlohmann::json::sax_parse(h, &keys)) LOOM_FAIL(file, ": the header is not valid JSON (", keys.error, ")");
  try {
    check_json_depth(h, file);  // before nlohmann recurses into it
    header = nlohmann::json::parse(h);
  } catch (const nlohmann::json::exception& e) {
    LOOM_FAIL(file, ": the header is not valid JSON (", e.what(), ")");
  }
  const std::vector<std::string>& order = keys.order;
  const std::string& dup = keys.dup;
  LOOM_CHECK(dup.empty(), file, ": the header names '", dup, "' twice");
  LOOM_CHECK(header.is_object(), file, ": the header must be a JSON object");
  SafetensorsLayout out;
  std::vector<Entry>& entries = out.entries;
  entries.reserve(order.size());
  for (const std::string& name : order) {
    const auto it = header.find(name);
    LOOM_CHECK(it != header.end(), file, ": the header lost key '", name, "' while parsing");
    const nlohmann::json& v = *it;
    if (name == "__metadata__") {
      LOOM_CHECK(v.is_object(), file, ": __metadata__ must be an object of strings");
      for (const auto& [k, s] : v.items()) {
        LOOM_CHECK(s.is_string(), file, ": __metadata__ value for '", k, "' is not a string");
        out.metadata[k] = s.get<std::string>();
      }
      continue;
    }
    LOOM_CHECK(v.is_object() && v.contains("dtype") && v.contains("shape") && v.contains("data_offsets"), file,
               ": tensor '", name, "' needs dtype, shape and data_offsets");
    LOOM_CHECK(v["dtype"].is_string(), file, ": tensor '", name, "' has a non-string dtype");
    Entry e{name, st_dtype(v["dtype"].get<std::string>(), file, name), {}, 0, 0};
    LOOM_CHECK(v["shape"].is_array(), file, ": tensor '", name, "' has a shape that is not an array");
    unsigned __int128 count = 1;
    for (const auto& d : v["shape"]) {
      const uint64_t dim = json_u64(d, file, name, "shape");
      LOOM_CHECK(dim <= uint64_t(INT64_MAX), file, ": tensor '", name, "' has a dimension too large");
      // Saturating at size + 1 keeps the product small (a later 0 dim still makes it 0) and still too big.
      count = std::min<unsigned __int128>(count * dim, (unsigned __int128)size + 1);
      e.shape.push_back(int64_t(dim));
    }
    const auto& off = v["data_offsets"];
    LOOM_CHECK(off.is_array() && off.size() == 2, file, ": tensor '", name, "' data_offsets must be [begin, end]");
    e.begin = json_u64(off[0], file, name, "data_offsets");
    e.end = json_u64(off[1], file, name, "data_offsets");
    const uint64_t data_size = size - 8 - n;
    LOOM_CHECK(e.begin <= e.end && e.end <= data_size, file, ": tensor '", name, "' data_offsets [", e.begin, ", ",
               e.end, "] are out of range (the data section has ", data_size, " bytes",
               e.end > data_size ? "; file truncated?)" : ")");
    const unsigned __int128 want = count * itemsize(e.dtype);
    LOOM_CHECK(count <= size, file, ": tensor '", name, "' has shape ", e.shape,
               ", more elements than the file has bytes");
    LOOM_CHECK(want == e.end - e.begin, file, ": tensor '", name, "' of shape ", e.shape, " and dtype ",
               v["dtype"].get<std::string>(), " needs ", uint64_t(want), " bytes but data_offsets span ",
               e.end - e.begin);
    entries.push_back(std::move(e));
  }
  std::stable_sort(entries.begin(), entries.end(), [](const Entry& a, const Entry& b) {
    return a.begin != b.begin ? a.begin < b.begin : a.end < b.end;
  });
  uint64_t at = 0;
  for (const Entry& e : entries) {
    LOOM_CHECK(e.begin >= at, file, ": tensor '", e.name, "' data [", e.begin, ", ", e.end,
               ") overlaps the previous tensor's data (which ends at ", at, ")");
    LOOM_CHECK(e.begin == at, file, ": ", e.begin - at, " unused bytes before tensor '", e.name, "' (at offset ", at,
               ")");
    at = e.end;
  }
  LOOM_CHECK(at == size - 8 - n, file, ": ", size - 8 - n - at, " bytes after the last tensor's data are not described "
             "by the header");
  for (Entry& e : entries) e.begin += 8 + n, e.end += 8 + n;
  return out;
}

SafetensorsFile parse(uint64_t size, const Source& read, const std::string& file) {
  SafetensorsLayout l = layout(size, read, file);
  SafetensorsFile out;
  out.metadata = std::move(l.metadata);
  for (const Entry& e : l.entries) {
    Tensor t = make_tensor(e.shape, e.dtype);
    if (e.end > e.begin) read(e.begin, t.raw_data(), size_t(e.end - e.begin));
    check_safetensors_bools(t, e.name, file);
    out.tensors.emplace_back(e.name, t);
  }
  return out;
}

[[noreturn]] void sys_fail(const std::string& what, const std::string& path) {
  LOOM_FAIL(path, ": ", what, " failed (", std::strerror(errno), ")");
}

void write_unsealed(const std::string& path, const std::function<void(const Sink&)>& body) {
  const std::string tmp = path + ".tmp";
  int fd = ::open(tmp.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
  if (fd < 0) sys_fail("creating " + tmp, path);
  try {
    body([&](const void* p, size_t n) {
      const char* c = static_cast<const char*>(p);
      while (n > 0) {
        const ssize_t w = ::write(fd, c, n);
        if (w < 0 && errno == EINTR) continue;
        if (w <= 0) sys_fail("writing " + tmp, path);
        c += w;
        n -= size_t(w);
      }
    });
    if (::fsync(fd) != 0) sys_fail("fsync of " + tmp, path);
    const int rc = ::close(fd);
    fd = -1;
    if (rc != 0) sys_fail("closing " + tmp, path);
    if (::rename(tmp.c_str(), path.c_str()) != 0) sys_fail("renaming " + tmp + " over it", path);
  } catch (...) {
    if (fd >= 0) ::close(fd);
    ::unlink(tmp.c_str());
    throw;
  }
  // The rename is durable only once the directory entry is on disk.
  std::string dir = std::filesystem::path(path).parent_path().string();
  if (dir.empty()) dir = ".";
  const int dfd = ::open(dir.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (dfd < 0) sys_fail("opening directory " + dir, path);
  const int rc = ::fsync(dfd);
  ::close(dfd);
  if (rc != 0) sys_fail("fsync of directory " + dir, path);
}

void write_atomic(const std::string& path, const std::function<void(const Sink&)>& body) {
  const RunFileSealer sealer = run_file_sealer();
  if (!sealer) return write_unsealed(path, body);
  // A run being written encrypted at rest (io/run_file.h): the file is sealed in memory first, so not even the
  // temp file holds plaintext.
  std::string bytes;
  body([&](const void* p, size_t n) { bytes.append(static_cast<const char*>(p), n); });
  sealer(path, bytes);
  write_unsealed(path, [&](const Sink& sink) { sink(bytes.data(), bytes.size()); });
}

}  // namespace

void check_safetensors_bools(const Tensor& t, const std::string& tensor, const std::string& file) {
  if (t.dtype() != DType::boolean) return;
  const auto* b = static_cast<const uint8_t*>(t.raw_data());
  for (int64_t i = 0; i < t.numel(); ++i)
    LOOM_CHECK(b[i] <= 1, file, ": bool tensor '", tensor, "' holds byte ", int(b[i]), " at element ", i);
}

SafetensorsLayout parse_safetensors_layout(std::string_view bytes, const std::string& name) {
  return layout(bytes.size(), [&](uint64_t off, void* dst, size_t n) { std::memcpy(dst, bytes.data() + off, n); }, name);
}

SafetensorsLayout parse_safetensors_layout(uint64_t size, const SafetensorsSource& read, const std::string& name) {
  return layout(size, read, name);
}

const Tensor* SafetensorsFile::find(const std::string& name) const {
  for (const auto& [n, t] : tensors)
    if (n == name) return &t;
  return nullptr;
}

std::string safetensors_bytes(const NamedTensors& tensors, const Metadata& metadata) {
  std::string out;
  emit(plan(tensors, metadata), [&](const void* p, size_t n) { out.append(static_cast<const char*>(p), n); });
  return out;
}

SafetensorsFile parse_safetensors(std::string_view bytes, const std::string& name) {
  return parse(bytes.size(), [&](uint64_t off, void* dst, size_t n) { std::memcpy(dst, bytes.data() + off, n); }, name);
}

void save_safetensors(const std::string& path, const NamedTensors& tensors, const Metadata& metadata) {
  const Plan p = plan(tensors, metadata);
  write_atomic(path, [&](const Sink& sink) { emit(p, sink); });
}

SafetensorsFile load_safetensors(const std::string& path) {
  const int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) sys_fail("opening", path);
  struct stat st;
  if (::fstat(fd, &st) != 0) {
    ::close(fd);
    sys_fail("stat", path);
  }
  if (!S_ISREG(st.st_mode)) {  // a folder opens too, and reports a size that is not the file's
    ::close(fd);
    LOOM_FAIL(path, S_ISDIR(st.st_mode) ? ": is a folder, expected a .safetensors file" : ": is not a regular file");
  }
  try {
    // Tensors are read straight into their own memory: no second copy of a large checkpoint.
    SafetensorsFile f = parse(uint64_t(st.st_size), [&](uint64_t off, void* dst, size_t n) {
      char* c = static_cast<char*>(dst);
      while (n > 0) {
        const ssize_t r = ::pread(fd, c, n, off_t(off));
        if (r < 0 && errno == EINTR) continue;
        if (r < 0) sys_fail("reading", path);
        LOOM_CHECK(r > 0, path, ": file ended early while reading (was it truncated during the load?)");
        c += r; off += uint64_t(r); n -= size_t(r);
      }
    }, path);
    ::close(fd);
    return f;
  } catch (...) {
    ::close(fd);
    throw;
  }
}

void write_file_atomic(const std::string& path, std::string_view contents) {
  write_atomic(path, [&](const Sink& sink) { sink(contents.data(), contents.size()); });
}

}  // namespace loom::io
