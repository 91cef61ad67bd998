// safetensors: bit-exact round trips of every dtype, files exchanged with PyTorch in both directions, strict
// validation of corrupt files, and atomic writes.
#include <cmath>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <fstream>

#include <gtest/gtest.h>

#include "loom/loom.h"
#include "support/torch_oracle.h"

using namespace loom;
namespace fs = std::filesystem;

namespace {

struct TempDir {
  fs::path path;
  TempDir() {
    std::string tmpl = (fs::temp_directory_path() / "loom_st_XXXXXX").string();
    path = mkdtemp(tmpl.data());
  }
  ~TempDir() { fs::remove_all(path); }
  std::string file(const std::string& name) const { return (path / name).string(); }
};

void write_bytes(const std::string& path, const std::string& bytes) {
  std::ofstream(path, std::ios::binary).write(bytes.data(), std::streamsize(bytes.size()));
}

std::string raw_file(const std::string& header, const std::string& data, uint64_t len = UINT64_MAX) {
  if (len == UINT64_MAX) len = header.size();
  std::string s(8, '\0');
  for (int i = 0; i < 8; ++i) s[size_t(i)] = char(len >> (8 * i));
  return s + header + data;
}

bool same_bits(const Tensor& a, const Tensor& b) {
  if (a.dtype() != b.dtype() || a.shape() != b.shape()) return false;
  if (a.numel() == 0) return true;
  Tensor ca = a.contiguous(), cb = b.contiguous();
  return std::memcmp(ca.raw_data(), cb.raw_data(), size_t(a.numel()) * itemsize(a.dtype())) == 0;
}

io::NamedTensors every_dtype() {
  Generator g(3);
  Tensor f32 = randn({3, 4}, {}, &g);
  f32.data<float>()[5] = NAN;
  return {{"w.f32", f32},
          {"b.f64", randn({5}, {.dtype = DType::f64}, &g)},
          {"i64", tensor(std::vector<int64_t>{-3, int64_t(1) << 40, 7}, {3})},
          {"i32", tensor({-7.0, 8.0, 2147483647.0}, {3}, {.dtype = DType::i32})},
          {"u8", tensor({0.0, 255.0, 3.0, 4.0}, {2, 2}, {.dtype = DType::u8})},
          {"mask", tensor({1.0, 0.0, 1.0}, {3}, {.dtype = DType::boolean})},
          {"bf", randn({2, 3}, {}, &g).to(DType::bf16)},
          {"half", tensor({0.1, -65504.0, 6e-8}, {3}).to(DType::f16)},
          {"scalar", scalar_tensor(2.5)},
          {"empty", zeros({0, 3})},
          {"transposed", randn({3, 2}, {}, &g).t()}};
}

template <class F>
void expect_error(F&& f, const std::vector<std::string>& parts) {
  try {
    f();
    ADD_FAILURE() << "expected loom::Error mentioning " << parts.back();
  } catch (const Error& e) {
    for (const auto& p : parts)
      EXPECT_NE(std::string(e.what()).find(p), std::string::npos) << e.what() << " lacks " << p;
  }
}

}  // namespace

TEST(Safetensors, RoundTripEveryDtype) {
  TempDir d;
  const io::NamedTensors ts = every_dtype();
  io::save_safetensors(d.file("m.safetensors"), ts, {{"format", "pt"}, {"step", "12"}});
  io::SafetensorsFile f = io::load_safetensors(d.file("m.safetensors"));
  ASSERT_EQ(f.tensors.size(), ts.size());
  for (size_t i = 0; i < ts.size(); ++i) {
    EXPECT_EQ(f.tensors[i].first, ts[i].first);  // saved order is kept
    EXPECT_TRUE(same_bits(f.tensors[i].second, ts[i].second)) << ts[i].first;
  }
  EXPECT_EQ(f.metadata, (io::Metadata{{"format", "pt"}, {"step", "12"}}));
  ASSERT_NE(f.find("half"), nullptr);
  EXPECT_EQ(f.find("nope"), nullptr);
  const std::string bytes = io::safetensors_bytes(ts);
  uint64_t n = 0;
  std::memcpy(&n, bytes.data(), 8);
  EXPECT_EQ(n % 8, 0u);  // header padded so the data is 8-byte aligned
  EXPECT_TRUE(io::parse_safetensors(bytes, "mem").metadata.empty());
  EXPECT_THROW(io::safetensors_bytes({{"a", ones({1})}, {"a", ones({1})}}), Error);
  EXPECT_THROW(io::safetensors_bytes({{"__metadata__", ones({1})}}), Error);
}

TEST(Safetensors, ReadsAFileWrittenByPython) {
  TempDir d;
  const std::string path = d.file("torch.safetensors");
  // The data is laid out in the reverse of the header's order: loom returns file (data) order.
  auto r = test::torch_run("PATH = '" + path + "'\n" + R"(
import struct, json
ts = {'a': torch.arange(6, dtype=torch.float32).reshape(2, 3) / 7, 'b': torch.tensor([1.5, -2.25], dtype=torch.float64),
      'c': torch.tensor([[-3, 2**40]], dtype=torch.int64), 'd': torch.tensor([7, -8, 9], dtype=torch.int32),
      'e': torch.tensor([0, 255, 3], dtype=torch.uint8), 'f': torch.tensor([True, False, True]),
      'g': torch.tensor([1.5, -0.1, 3e38], dtype=torch.bfloat16),
      'h': torch.tensor([0.1, -65504, 6e-8], dtype=torch.float16),
      's': torch.tensor(2.5)}
N = {torch.float32: 'F32', torch.float64: 'F64', torch.int64: 'I64', torch.int32: 'I32', torch.uint8: 'U8',
     torch.bool: 'BOOL', torch.bfloat16: 'BF16', torch.float16: 'F16'}
hdr, blobs, off = {'__metadata__': {'format': 'pt', 'by': 'python'}}, [], 0
for k, t in reversed(list(ts.items())):
    b = t.contiguous().reshape(-1).view(torch.uint8).numpy().tobytes()
    hdr[k] = {'dtype': N[t.dtype], 'shape': list(t.shape), 'data_offsets': [off, off + len(b)]}
    blobs.append(b); off += len(b)
h = json.dumps(hdr).encode()
with open(PATH, 'wb') as f:
    f.write(struct.pack('<Q', len(h)) + h + b''.join(blobs))
for k, t in ts.items():
    out[k] = t.float() if t.dtype in (torch.bfloat16, torch.float16) else t
)", {});
  io::SafetensorsFile f = io::load_safetensors(path);
  EXPECT_EQ(f.metadata, (io::Metadata{{"by", "python"}, {"format", "pt"}}));
  std::vector<std::string> names;
  for (const auto& [name, t] : f.tensors) names.push_back(name);
  EXPECT_EQ(names, (std::vector<std::string>{"s", "h", "g", "f", "e", "d", "c", "b", "a"}));
  const std::map<std::string, DType> want = {{"a", DType::f32}, {"b", DType::f64}, {"c", DType::i64}, {"d", DType::i32},
                                             {"e", DType::u8}, {"f", DType::boolean}, {"g", DType::bf16},
                                             {"h", DType::f16}, {"s", DType::f32}};
  for (const auto& [name, dt] : want) {
    const Tensor* t = f.find(name);
    ASSERT_NE(t, nullptr) << name;
    EXPECT_EQ(t->dtype(), dt) << name;
    EXPECT_EQ(t->shape(), r[name].shape()) << name;
    // Exact: bf16/f16 widen to f32 losslessly on both sides.
    EXPECT_EQ(t->tolist(), r[name].tolist()) << name;
  }
}

TEST(Safetensors, PythonReadsALoomFile) {
  TempDir d;
  const std::string path = d.file("loom.safetensors");
  io::NamedTensors ts = every_dtype();
  ts.erase(std::remove_if(ts.begin(), ts.end(), [](auto& p) { return p.first == "empty"; }), ts.end());
  ts[0].second.data<float>()[5] = 1.0f;  // NaN does not compare equal; the round-trip test covers it
  io::save_safetensors(path, ts, {{"format", "pt"}, {"note", "hi"}});
  auto r = test::torch_run("PATH = '" + path + "'\n" + R"(
import struct, json
raw = open(PATH, 'rb').read()
n = struct.unpack('<Q', raw[:8])[0]
hdr = json.loads(raw[8:8 + n])
D = {'F32': torch.float32, 'F64': torch.float64, 'I64': torch.int64, 'I32': torch.int32, 'U8': torch.uint8,
     'BOOL': torch.bool, 'BF16': torch.bfloat16, 'F16': torch.float16}
for k, v in hdr.items():
    if k == '__metadata__':
        continue
    b, e = v['data_offsets']
    t = torch.frombuffer(bytearray(raw[8 + n + b:8 + n + e]), dtype=D[v['dtype']]).reshape(v['shape'])
    out[k] = t.float() if t.dtype in (torch.bfloat16, torch.float16) else t
out['meta_ok'] = torch.tensor(hdr['__metadata__'] == {'format': 'pt', 'note': 'hi'})
out['aligned'] = torch.tensor(n % 8 == 0)
)", {});
  EXPECT_EQ(r["meta_ok"].item(), 1.0);
  EXPECT_EQ(r["aligned"].item(), 1.0);
  for (const auto& [name, t] : ts) {
    ASSERT_TRUE(r.count(name)) << name;
    EXPECT_EQ(r[name].shape(), t.shape()) << name;
    EXPECT_EQ(r[name].tolist(), t.tolist()) << name;
  }
}

TEST(Safetensors, CorruptFilesAreRefused) {
  TempDir d;
  const std::string good =
      io::safetensors_bytes({{"a", ones({2})}, {"b", tensor({1.0, 0.0}, {2}, {.dtype = DType::boolean})}});
  auto bad = [&](const std::string& name, const std::string& bytes, const std::string& what) {
    write_bytes(d.file(name), bytes);
    expect_error([&] { io::load_safetensors(d.file(name)); }, {d.file(name), what});
  };
  const std::string f32x2 = R"({"a":{"dtype":"F32","shape":[2],"data_offsets":[0,8]}})";
  const std::string eight(8, '\0');
  bad("truncated", good.substr(0, good.size() - 3), "out of range");
  bad("tiny", "\x05\x00", "too short");
  bad("hugelen", raw_file(f32x2, eight, 1ull << 40), "header length");
  bad("lenpastend", raw_file(f32x2, eight, f32x2.size() + 9), "header length");
  bad("range", raw_file(R"({"a":{"dtype":"F32","shape":[4],"data_offsets":[0,16]}})", eight), "out of range");
  bad("dtype", raw_file(R"({"a":{"dtype":"Q7","shape":[2],"data_offsets":[0,8]}})", eight), "unknown dtype 'Q7'");
  bad("i8", raw_file(R"({"a":{"dtype":"I8","shape":[8],"data_offsets":[0,8]}})", eight), "does not support");
  bad("numel", raw_file(R"({"a":{"dtype":"F32","shape":[3],"data_offsets":[0,8]}})", eight), "needs 12 bytes");
  bad("overlap", raw_file(R"({"a":{"dtype":"F32","shape":[2],"data_offsets":[0,8]},)"
                          R"("b":{"dtype":"F32","shape":[2],"data_offsets":[4,12]}})", std::string(12, '\0')),
      "overlaps");
  bad("gap", raw_file(R"({"a":{"dtype":"F32","shape":[1],"data_offsets":[4,8]}})", eight), "unused bytes");
  bad("trailing", raw_file(f32x2, eight + "xx"), "not described");
  bad("json", raw_file(R"({"a":{"dtype":"F32",)", eight), "not valid JSON");
  bad("dup", raw_file(R"({"a":{"dtype":"F32","shape":[1],"data_offsets":[0,4]},)"
                      R"("a":{"dtype":"F32","shape":[1],"data_offsets":[4,8]}})", eight), "'a' twice");
  bad("neg", raw_file(R"({"a":{"dtype":"F32","shape":[-2],"data_offsets":[0,8]}})", eight), "shape");
  bad("meta", raw_file(R"({"__metadata__":{"k":1},"a":{"dtype":"F32","shape":[2],"data_offsets":[0,8]}})", eight),
      "__metadata__");
  bad("fields", raw_file(R"({"a":{"dtype":"F32","shape":[2]}})", eight), "data_offsets");
  std::string badbool = good;
  badbool[badbool.size() - 1] = 2;
  bad("bool", badbool, "bool tensor 'b'");
  expect_error([&] { io::load_safetensors(d.file("missing")); }, {d.file("missing"), "opening"});
}

TEST(Safetensors, AtomicWrites) {
  TempDir d;
  const std::string path = d.file("ckpt.safetensors");
  io::save_safetensors(path, {{"x", ones({3})}});
  io::save_safetensors(path, {{"y", zeros({2})}}, {{"v", "2"}});
  EXPECT_FALSE(fs::exists(path + ".tmp"));
  io::SafetensorsFile f = io::load_safetensors(path);
  ASSERT_EQ(f.tensors.size(), 1u);
  EXPECT_EQ(f.tensors[0].first, "y");
  // A refused save leaves the previous file intact and no temporary file.
  EXPECT_THROW(io::save_safetensors(path, {{"", ones({1})}}), Error);
  EXPECT_FALSE(fs::exists(path + ".tmp"));
  EXPECT_EQ(io::load_safetensors(path).metadata.at("v"), "2");
  expect_error([&] { io::save_safetensors(d.file("no/such/dir/x.safetensors"), {{"x", ones({1})}}); },
               {d.file("no/such/dir/x.safetensors"), "creating"});
  io::write_file_atomic(d.file("config.json"), "{\"a\": 1}");
  EXPECT_EQ(fs::file_size(d.file("config.json")), 8u);
  EXPECT_FALSE(fs::exists(d.file("config.json.tmp")));
  std::vector<std::string> names;
  for (const auto& e : fs::directory_iterator(d.path)) names.push_back(e.path().filename().string());
  std::sort(names.begin(), names.end());
  EXPECT_EQ(names, (std::vector<std::string>{"ckpt.safetensors", "config.json"}));
}
