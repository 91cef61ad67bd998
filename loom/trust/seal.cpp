// Sealing happens in io's atomic writer (io/run_file.h's sealer hook) rather than in each writer, so a new file
// type written into a run is covered without anyone remembering to encrypt it.
#include "loom/trust/seal.h"

#include <sodium.h>

#include <filesystem>
#include <mutex>

#include "loom/core/error.h"
#include "loom/io/run_file.h"
#include "loom/io/safetensors.h"
#include "loom/trust/encrypt.h"
#include "loom/trust/keys.h"
#include "loom/trust/manifest.h"
#include "loom/trust/sodium_init.h"

namespace loom::trust {

namespace fs = std::filesystem;

namespace {

struct Run {
  fs::path dir;  // absolute, normalised
  std::vector<unsigned char> key;
};

std::mutex g_mu;
std::vector<Run> g_runs;

fs::path normalised(const std::string& path) { return fs::weakly_canonical(fs::absolute(path)); }

// PATH's name inside DIR ("tokenizer/encoder.json"), or "" when it lies elsewhere.
std::string name_inside(const fs::path& dir, const fs::path& path) {
  const fs::path rel = path.lexically_relative(dir);
  if (rel.empty() || *rel.begin() == ".." || rel == ".") return "";
  return rel.generic_string();
}

bool stays_plain(const std::string& name) {
  return name == kManifestFile || name == kSignatureFile || name.ends_with(".tmp");
}

void seal(const std::string& path, std::string& bytes) {
  const auto f = sealed_file(path);
  if (!f || stays_plain(f->name) || is_encrypted(bytes)) return;
  bytes = encrypt_bytes(bytes, f->key, f->name);
}

}  // namespace

std::optional<SealedFile> sealed_file(const std::string& path) {
  std::lock_guard<std::mutex> l(g_mu);
  if (g_runs.empty()) return std::nullopt;
  const fs::path p = normalised(path);
  for (const Run& r : g_runs) {
    std::string name = name_inside(r.dir, p);
    if (!name.empty()) return SealedFile{r.dir.string(), std::move(name), r.key};
  }
  return std::nullopt;
}

void begin_sealed_run(const std::string& dir, const std::string& key_file, const std::string& previous_key_file) {
  std::error_code ec;
  fs::create_directories(dir, ec);
  LOOM_CHECK(fs::is_directory(dir), dir, ": cannot create the run folder (", ec.message(), ")");
  std::vector<unsigned char> key = read_key(key_file, KeyKind::Symmetric);
  std::vector<unsigned char> previous;
  if (!previous_key_file.empty() && previous_key_file != key_file)
    previous = read_key(previous_key_file, KeyKind::Symmetric);
  // What a resumed run already holds, under the new key.
  for (const auto& e : fs::recursive_directory_iterator(dir)) {
    if (!e.is_regular_file()) continue;
    const std::string name = fs::relative(e.path(), dir).generic_string();
    if (stays_plain(name)) continue;
    const std::string where = e.path().string();
    std::string bytes = read_all(where);
    if (is_encrypted(bytes)) {
      try {
        (void)decrypt_bytes(bytes, key, name, where);
        continue;  // already under this key
      } catch (const Error&) {
        if (previous.empty()) throw;
      }
      bytes = decrypt_bytes(bytes, previous, name, where);
    }
    io::write_file_atomic(where, encrypt_bytes(bytes, key, name));
  }
  if (!previous.empty()) sodium_memzero(previous.data(), previous.size());
  {
    std::lock_guard<std::mutex> l(g_mu);
    g_runs.push_back({normalised(dir), std::move(key)});
  }
  io::set_run_file_sealer(&seal);
}

void end_sealed_run(const std::string& dir) {
  const fs::path d = normalised(dir);
  std::lock_guard<std::mutex> l(g_mu);
  for (auto it = g_runs.begin(); it != g_runs.end();) {
    if (it->dir == d) {
      sodium_memzero(it->key.data(), it->key.size());
      it = g_runs.erase(it);
    } else {
      ++it;
    }
  }
  if (g_runs.empty()) io::set_run_file_sealer(nullptr);
}

}  // namespace loom::trust
