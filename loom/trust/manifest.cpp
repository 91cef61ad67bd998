// Manifests hash files as stored (ciphertext when encrypted) so `loom verify` needs no key, and hash each
// tensor's bytes too so a report names the damaged tensor rather than only the file.
#include "loom/trust/manifest.h"

#include <sodium.h>

#include <algorithm>
#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>
#include <sstream>

#include "loom/core/error.h"
#include "loom/io/safetensors.h"
#include "loom/trust/encrypt.h"
#include "loom/trust/sha256.h"
#include "loom/trust/sodium_init.h"

namespace loom::trust {

namespace fs = std::filesystem;
using json = nlohmann::ordered_json;

std::string sha256_hex(std::string_view bytes) {
  Sha256 h;  // the CPU's SHA extensions when present (trust/sha256.h)
  h.update(bytes.data(), bytes.size());
  return h.hex();
}

std::string read_all(const std::string& path) {
  std::ifstream f(path, std::ios::binary);
  LOOM_CHECK(f.good(), path, ": cannot open for reading");
  std::ostringstream ss;
  ss << f.rdbuf();
  LOOM_CHECK(!f.bad(), path, ": read error");
  return ss.str();
}

namespace {

bool skipped(const std::string& rel) {
  return rel == kManifestFile || rel == kSignatureFile || rel.ends_with(".tmp");
}

// A tensor's hash covers its name, dtype, shape and bytes: renaming or reshaping a tensor also shows.
std::map<std::string, std::string> tensor_hashes(const std::string& bytes, const std::string& where) {
  std::map<std::string, std::string> out;
  io::SafetensorsFile f = io::parse_safetensors(bytes, where);
  for (const auto& [name, t] : f.tensors) {
    std::ostringstream head;
    head << name << '|' << int(t.dtype()) << '|';
    for (auto d : t.shape()) head << d << ',';
    const Tensor c = t.contiguous();
    out[name] = sha256_hex(head.str() + std::string(static_cast<const char*>(c.raw_data()), c.numel() * itemsize(c.dtype())));
  }
  return out;
}

// Checked by the encryption magic first: a sealed file's byte 8 is the first byte of its random nonce, which is
// '{' once in 256 files (CI caught an encrypted run whose tensors were "hashed" and refused that way).
bool is_plain_safetensors(const std::string& rel, const std::string& bytes) {
  return rel.ends_with(".safetensors") && !is_encrypted(bytes) && bytes.size() >= 9 && bytes[8] == '{';
}

}  // namespace

Manifest compute_manifest(const std::string& dir) {
  LOOM_CHECK(fs::is_directory(dir), dir, ": not a folder");
  Manifest m;
  for (const auto& e : fs::recursive_directory_iterator(dir)) {
    if (!e.is_regular_file()) continue;
    const std::string rel = fs::relative(e.path(), dir).generic_string();
    if (skipped(rel)) continue;
    const std::string bytes = read_all(e.path().string());
    m.files[rel] = sha256_hex(bytes);
    if (is_plain_safetensors(rel, bytes)) m.tensors[rel] = tensor_hashes(bytes, e.path().string());
  }
  return m;
}

std::string manifest_json(const Manifest& m) {
  json j;
  j["format"] = "loom-manifest-v1";
  j["files"] = json::object();
  for (const auto& [k, v] : m.files) j["files"][k] = v;
  j["tensors"] = json::object();
  for (const auto& [f, ts] : m.tensors) {
    j["tensors"][f] = json::object();
    for (const auto& [k, v] : ts) j["tensors"][f][k] = v;
  }
  return j.dump(1) + "\n";
}

Manifest parse_manifest(const std::string& text, const std::string& where) {
  Manifest m;
  try {
    const json j = json::parse(text);
    LOOM_CHECK(j.value("format", "") == "loom-manifest-v1", where, ": not a loom manifest (format field is '",
               j.value("format", ""), "', expected 'loom-manifest-v1')");
    for (const auto& [k, v] : j.at("files").items()) m.files[k] = v.get<std::string>();
    for (const auto& [f, ts] : j.at("tensors").items())
      for (const auto& [k, v] : ts.items()) m.tensors[f][k] = v.get<std::string>();
  } catch (const Error&) {
    throw;
  } catch (const std::exception& e) {
    LOOM_FAIL(where, ": malformed manifest: ", e.what());
  }
  return m;
}

std::string write_manifest(const std::string& dir) {
  const std::string text = manifest_json(compute_manifest(dir));
  io::write_file_atomic((fs::path(dir) / kManifestFile).string(), text);
  return text;
}

void remove_manifest(const std::string& dir) {
  std::error_code ec;
  fs::remove(fs::path(dir) / kManifestFile, ec);
  fs::remove(fs::path(dir) / kSignatureFile, ec);
}

std::vector<std::string> verify_manifest(const std::string& dir) {
  const std::string mpath = (fs::path(dir) / kManifestFile).string();
  LOOM_CHECK(fs::exists(mpath), dir, ": no ", kManifestFile, " (make one with loom sign or loom verify --write)");
  const Manifest want = parse_manifest(read_all(mpath), mpath);
  std::vector<std::string> problems;
  for (const auto& [rel, sha] : want.files) {
    const fs::path p = fs::path(dir) / rel;
    if (!fs::exists(p)) {
      problems.push_back(rel + ": missing");
      continue;
    }
    const std::string bytes = read_all(p.string());
    if (sha256_hex(bytes) == sha) continue;
    auto it = want.tensors.find(rel);
    bool named = false;
    if (it != want.tensors.end() && is_plain_safetensors(rel, bytes)) {
      try {
        const auto have = tensor_hashes(bytes, p.string());
        for (const auto& [name, h] : it->second) {
          auto t = have.find(name);
          if (t == have.end()) problems.push_back(rel + ": tensor '" + name + "' missing"), named = true;
          else if (t->second != h) problems.push_back(rel + ": tensor '" + name + "' changed"), named = true;
        }
      } catch (const Error&) {
        problems.push_back(rel + ": changed (the safetensors header no longer parses)"), named = true;
      }
    }
    if (!named) problems.push_back(rel + ": changed");
  }
  for (const auto& e : fs::recursive_directory_iterator(dir)) {
    if (!e.is_regular_file()) continue;
    const std::string rel = fs::relative(e.path(), dir).generic_string();
    if (!skipped(rel) && !want.files.count(rel)) problems.push_back(rel + ": not in the manifest (added later)");
  }
  return problems;
}

}  // namespace loom::trust
