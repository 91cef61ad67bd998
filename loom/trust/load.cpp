// The policy is process-wide (set once from the command line or the environment) because weights are read
// from deep inside loaders that take only a path; it changes what loads, never what a loaded model computes.
#include "loom/trust/load.h"

#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <utility>
#include <mutex>
#include <sstream>

#include "loom/core/error.h"
#include "loom/io/run_file.h"
#include "loom/io/run_file_plain.h"
#include "loom/trust/encrypt.h"
#include "loom/trust/keys.h"
#include "loom/trust/manifest.h"
#include "loom/trust/seal.h"
#include "loom/trust/sha256.h"
#include "loom/trust/sign.h"
#include "loom/trust/sodium_init.h"

namespace loom::trust {

namespace fs = std::filesystem;

namespace {
std::mutex g_mu;
bool is_plain(const std::string& path);
io::RunFileAccess stream_check(const std::string& path);

void install() {
  io::set_run_file_reader(&read_run_file);
  io::set_run_file_plain_check(&is_plain);
  io::set_run_file_stream_check(&stream_check);
}

// Loaders below trust (models, text) read run files through io::read_run_file: route them here. Installed when
// this file is linked (anything that sets a policy or reads a run file through trust links it) and again by
// set_load_policy, so the order of static initialisation does not matter.
const bool g_installed = (install(), true);
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

// The run folder a file belongs to and the file's name inside it. A file in a subfolder of a run
// (tokenizer/encoder.json): the run is the nearest folder above with a manifest, and the file's name there is its
// relative path (what the manifest and the encryption's associated data use).
std::pair<std::string, std::string> run_of(const std::string& path) {
  const fs::path fp(path);
  std::string dir = fp.parent_path().empty() ? "." : fp.parent_path().string();
  std::string rel = fp.filename().string();
  if (!fs::exists(fs::path(dir) / kManifestFile) && fp.parent_path().has_parent_path() &&
      fs::exists(fp.parent_path().parent_path() / kManifestFile)) {
    dir = fp.parent_path().parent_path().string();
    rel = (fp.parent_path().filename() / fp.filename()).generic_string();
  }
  return {dir, rel};
}

// The file's first bytes, enough to tell an encrypted file by its magic.
std::string read_head(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  std::string head(kEncMagic.size(), '\0');
  in.read(head.data(), std::streamsize(head.size()));
  head.resize(size_t(in.gcount()));
  return head;
}

// What read_run_file would return unchanged and unchecked: no signature asked for, no manifest to check (or
// checking skipped), and not encrypted (its first bytes are not the encryption magic).
bool is_plain(const std::string& path) {
  const LoadPolicy p = load_policy();
  if (!p.require_signature.empty()) return false;
  if (!p.skip_verify && fs::exists(fs::path(run_of(path).first) / kManifestFile)) return false;
  return !is_encrypted(read_head(path));
}

std::string join(const std::string& dir, const std::vector<std::string>& problems) {
  std::ostringstream s;
  s << dir << ": the run does not match its manifest:";
  for (const auto& p : problems) s << "\n  " << p;
  s << "\n(set LOOM_SKIP_VERIFY=1 or pass --skip-verify to load it anyway)";
  return s.str();
}

// The error for a file whose bytes do not hash to its manifest entry: the changed tensors by name when the manifest
// lists them (verify_manifest re-reads the file; this is the failure path only).
[[noreturn]] void fail_changed(const std::string& dir, const std::string& rel) {
  std::vector<std::string> mine;
  for (auto& line : verify_manifest(dir))
    if (line.starts_with(rel + ":")) mine.push_back(line);
  if (mine.empty()) mine.push_back(rel + ": changed");
  throw Error(join(dir, mine));
}

// The signature check read_run_file makes first. Returns the manifest text it verified, so the caller parses that
// very text.
std::string checked_manifest_text(const LoadPolicy& p, const std::string& path, const std::string& dir,
                                  const std::string& rel) {
  const fs::path mp = fs::path(dir) / kManifestFile;
  if (!p.require_signature.empty())
    LOOM_CHECK(fs::exists(fs::path(dir) / kSignatureFile), path, ": a signature is required (--require-signature) "
               "but ", dir, " has no ", kSignatureFile);
  LOOM_CHECK(fs::exists(mp), dir, ": no ", kManifestFile, " to check ", rel, " against");
  std::string text = read_all(mp.string());
  if (!p.require_signature.empty())
    LOOM_CHECK(manifest_text_signature_ok(dir, text, p.require_signature), dir, ": the signature does not verify with ",
               p.require_signature, " (signed by another key, or the manifest changed)");
  return text;
}

// SHA-256 of the bytes as a loader copies them, compared with the manifest's entry at the end.
class ManifestDigest final : public io::RunFileDigest {
 public:
  ManifestDigest(std::string dir, std::string rel, std::string want)
      : dir_(std::move(dir)), rel_(std::move(rel)), want_(std::move(want)) {}
  void update(const void* bytes, size_t n) override { h_.update(bytes, n); }
  void finish() override {
    if (h_.hex() != want_) fail_changed(dir_, rel_);
  }

 private:
  std::string dir_, rel_, want_;
  Sha256 h_;
};

// Plain files need nothing; encrypted ones the whole-file read (the AEAD tag covers the whole ciphertext and nothing
// of it may be used before it verifies); a file that only has to match its manifest (signed or not) is streamed.
io::RunFileAccess stream_check(const std::string& path) {
  if (is_plain(path)) return {};
  if (is_encrypted(read_head(path))) return {.route = io::RunFileRoute::whole, .digest = nullptr};
  const LoadPolicy p = load_policy();
  const auto [dir, rel] = run_of(path);
  const fs::path mp = fs::path(dir) / kManifestFile;
  const Manifest m = parse_manifest(checked_manifest_text(p, path, dir, rel), mp.string());
  auto it = m.files.find(rel);
  LOOM_CHECK(it != m.files.end(), path, ": not listed in ", mp.string(), " (added after the manifest was made)");
  return {.route = io::RunFileRoute::streamed, .digest = std::make_unique<ManifestDigest>(dir, rel, it->second)};
}
}  // namespace

LoadPolicy load_policy() {
  std::lock_guard<std::mutex> l(g_mu);
  return policy();
}

void set_load_policy(const LoadPolicy& p) {
  (void)g_installed;
  install();
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
  const auto [dir, rel] = run_of(path);
  const bool must_check = !p.require_signature.empty() || (!p.skip_verify && fs::exists(fs::path(dir) / kManifestFile));
  std::string manifest_text;
  if (must_check) manifest_text = checked_manifest_text(p, path, dir, rel);  // the signature first, before any data
  std::string bytes = read_all(path);
  if (must_check) {
    const fs::path mp = fs::path(dir) / kManifestFile;
    const Manifest m = parse_manifest(manifest_text, mp.string());
    auto it = m.files.find(rel);
    LOOM_CHECK(it != m.files.end(), path, ": not listed in ", mp.string(), " (added after the manifest was made)");
    if (sha256_hex(bytes) != it->second) fail_changed(dir, rel);
  }
  if (is_encrypted(bytes)) {
    // A file of the run this process is writing encrypted (a resume reading its checkpoint): the run's own key.
    if (auto sealed = sealed_file(path)) return decrypt_bytes(bytes, sealed->key, sealed->name, path);
    LOOM_CHECK(!p.key_file.empty(), path, ": the file is encrypted; give its key with --key-file F (or LOOM_KEY_FILE)");
    auto key = read_key(p.key_file, KeyKind::Symmetric);
    bytes = decrypt_bytes(bytes, key, rel, path);
  }
  return bytes;
}

}  // namespace loom::trust
