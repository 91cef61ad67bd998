// The signature file is "loom-ed25519-signature-v1", then the 64-byte detached signature in hex. Signing the
// manifest text (not each file) keeps verification one signature check plus the hashes verify_manifest does.
#include "loom/trust/sign.h"

#include <sodium.h>

#include <filesystem>

#include "loom/core/error.h"
#include "loom/io/safetensors.h"
#include "loom/trust/keys.h"
#include "loom/trust/manifest.h"
#include "loom/trust/sodium_init.h"

namespace loom::trust {

namespace fs = std::filesystem;

namespace {
constexpr const char* kSigHeader = "loom-ed25519-signature-v1";
}

void sign_run(const std::string& dir, const std::string& secret_key_file) {
  auto sk = read_key(secret_key_file, KeyKind::SignSecret);
  const std::string text = write_manifest(dir);
  unsigned char sig[crypto_sign_BYTES];
  crypto_sign_detached(sig, nullptr, reinterpret_cast<const unsigned char*>(text.data()), text.size(), sk.data());
  sodium_memzero(sk.data(), sk.size());
  char hex[2 * crypto_sign_BYTES + 1];
  sodium_bin2hex(hex, sizeof hex, sig, sizeof sig);
  io::write_file_atomic((fs::path(dir) / kSignatureFile).string(), std::string(kSigHeader) + "\n" + hex + "\n");
}

bool manifest_signature_ok(const std::string& dir, const std::string& public_key_file) {
  const fs::path mp = fs::path(dir) / kManifestFile;
  if (!fs::exists(mp)) return false;
  return manifest_text_signature_ok(dir, read_all(mp.string()), public_key_file);
}

bool manifest_text_signature_ok(const std::string& dir, const std::string& text, const std::string& public_key_file) {
  const auto pk = read_key(public_key_file, KeyKind::SignPublic);
  const fs::path sp = fs::path(dir) / kSignatureFile;
  if (!fs::exists(sp)) return false;
  const std::string sigtext = read_all(sp.string());
  const size_t nl = sigtext.find('\n');
  if (nl == std::string::npos || sigtext.substr(0, nl) != kSigHeader) return false;
  std::string hex = sigtext.substr(nl + 1);
  while (!hex.empty() && (hex.back() == '\n' || hex.back() == '\r')) hex.pop_back();
  unsigned char sig[crypto_sign_BYTES];
  size_t len = 0;
  if (sodium_hex2bin(sig, sizeof sig, hex.data(), hex.size(), nullptr, &len, nullptr) != 0 || len != sizeof sig)
    return false;
  return crypto_sign_verify_detached(sig, reinterpret_cast<const unsigned char*>(text.data()), text.size(),
                                     pk.data()) == 0;
}

std::vector<std::string> verify_run(const std::string& dir, const std::string& public_key_file) {
  std::vector<std::string> problems;
  if (!fs::exists(fs::path(dir) / kSignatureFile))
    problems.push_back(std::string(kSignatureFile) + ": missing (the run is not signed)");
  else if (!manifest_signature_ok(dir, public_key_file))
    problems.push_back(std::string(kSignatureFile) + ": the signature does not match " + kManifestFile +
                       " and the key " + public_key_file + " (signed by another key, or either file changed)");
  if (fs::exists(fs::path(dir) / kManifestFile)) {
    for (auto& p : verify_manifest(dir)) problems.push_back(p);
  } else {
    problems.push_back(std::string(kManifestFile) + ": missing");
  }
  return problems;
}

}  // namespace loom::trust
