// Run-folder manifests: the SHA-256 of every file and, inside each safetensors file, of every tensor, kept in
// DIR/manifest.json, so a changed byte is found and named ("model.safetensors: tensor '0.weight' changed").
//   trust::write_manifest("runs/cnn");                        // after training (loom train does it)
//   auto problems = trust::verify_manifest("runs/cnn");       // empty when every file and tensor matches
//   trust::check_run_file("runs/cnn/model.safetensors");      // throws loom::Error naming what changed
#pragma once
#include <map>
#include <string>
#include <vector>

namespace loom::trust {

inline constexpr const char* kManifestFile = "manifest.json";
inline constexpr const char* kSignatureFile = "manifest.sig";

// Lowercase hex SHA-256 of the bytes.
std::string sha256_hex(std::string_view bytes);

struct Manifest {
  std::map<std::string, std::string> files;                              // relative path -> sha256
  std::map<std::string, std::map<std::string, std::string>> tensors;     // safetensors file -> tensor -> sha256
};

// Every regular file under dir (recursively; not the manifest, its signature or *.tmp leftovers). Tensors are
// hashed for plaintext safetensors files (encrypted files are covered by their file hash).
Manifest compute_manifest(const std::string& dir);
std::string manifest_json(const Manifest& m);                // canonical text: sorted keys, 1 file per line
Manifest parse_manifest(const std::string& text, const std::string& where);
// Computes and writes DIR/manifest.json atomically; returns the text written.
std::string write_manifest(const std::string& dir);

// Removes DIR's manifest and signature (before files are rewritten, so none goes stale).
void remove_manifest(const std::string& dir);

// What differs between DIR and its manifest, one line each (a changed tensor, a changed/missing/new file);
// empty when everything matches. Throws when there is no readable manifest.
std::vector<std::string> verify_manifest(const std::string& dir);

}  // namespace loom::trust
