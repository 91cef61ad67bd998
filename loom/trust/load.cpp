// The policy is process-wide (set once from the command line or the environment) because weights are read
// from deep inside loaders that take only a path; it changes what loads, never what a loaded model computes.
#include "loom/trust/load.h"

#include <cstdlib>
#include <filesystem>
#include <mutex>
#include <sstream>

#include "loom/core/error.h"
#include "loom/trust/encrypt.h"
#include "loom/trust/keys.h"
#include "loom/trust/manifest.h"
#include "loom/trust/sign.h"
#include "loom/trust/sodium_init.h"

namespace loom::trust {

namespace fs = std::filesystem;

namespace {
std::mutex g_mu;
LoadPolicy& policy() {
  static LoadPolicy p = [] {
    LoadPolicy d;
    if (const char* k = std::getenv("LOOM_KEY_FILE")) d.key_file = k;
    if (const char* s = std::getenv("LOOM_REQUIRE_SIGNATURE")) d.require_signature = s;
    if (const char* v = std::getenv("LOOM_SKIP_VERIFY")) d.skip_verify = std::string(v) == "1";
    return d;
  }();
  return p;
}

std::string join(const std::string& dir, const std::vector<std::string>& problems) {
  std::ostringstream s;
  s << dir << ": the run does not match its manifest:";
  for (const auto& p : problems) s << "\n  " << p;
  s << "\n(set LOOM_SKIP_VERIFY=1 or pass --skip-verify to load it anyway)";
  return s.str();
}
}  // namespace

LoadPolicy load_policy() {
  std::lock_guard<std::mutex> l(g_mu);
  return policy();
}

void set_load_policy(const LoadPolicy& p) {
  std::lock_guard<std::mutex> l(g_mu);
  policy() = p;
}

void check_run(const std::string& dir) {
  const LoadPolicy p = load_policy();
  std::vector<std::string> problems;
  if (!p.require_signature.empty()) problems = verify_run(dir, p.require_signature);
  else if (!p.skip_verify && fs::exists(fs::path(dir) / kManifestFile)) problems = verify_manifest(dir);
  if (!problems.empty()) throw Error(join(dir, problems));
}

std::string read_run_file(const std::string& path) {
  const LoadPolicy p = load_policy();
  const fs::path fp(path);
  const std::string dir = fp.parent_path().empty() ? "." : fp.parent_path().string();
  const std::string rel = fp.filename().string();
  if (!p.require_signature.empty()) {
    LOOM_CHECK(fs::exists(fs::path(dir) / kSignatureFile), path, ": a signature is required (--require-signature) "
               "but ", dir, " has no ", kSignatureFile);
    LOOM_CHECK(manifest_signature_ok(dir, p.require_signature), dir, ": the signature does not verify with ",
               p.require_signature, " (signed by another key, or the manifest changed)");
  }
  std::string bytes = read_all(path);
  const bool must_check = !p.require_signature.empty() || (!p.skip_verify && fs::exists(fs::path(dir) / kManifestFile));
  if (must_check) {
    const fs::path mp = fs::path(dir) / kManifestFile;
    LOOM_CHECK(fs::exists(mp), dir, ": no ", kManifestFile, " to check ", rel, " against");
    const Manifest m = parse_manifest(read_all(mp.string()), mp.string());
    auto it = m.files.find(rel);
    LOOM_CHECK(it != m.files.end(), path, ": not listed in ", mp.string(), " (added after the manifest was made)");
    if (sha256_hex(bytes) != it->second) {
      std::vector<std::string> mine;
      for (auto& line : verify_manifest(dir))
        if (line.starts_with(rel + ":")) mine.push_back(line);
      if (mine.empty()) mine.push_back(rel + ": changed");
      throw Error(join(dir, mine));
    }
  }
  if (is_encrypted(bytes)) {
    LOOM_CHECK(!p.key_file.empty(), path, ": the file is encrypted; give its key with --key-file F (or LOOM_KEY_FILE)");
    auto key = read_key(p.key_file, KeyKind::Symmetric);
    bytes = decrypt_bytes(bytes, key, rel, path);
  }
  return bytes;
}

}  // namespace loom::trust
