// Hex text keys rather than raw bytes: a key pasted into a secret store or an environment survives, and the
// format line stops a public key being used where the secret one is meant (or a signing key as a cipher key).
#include "loom/trust/keys.h"

#include <sodium.h>

#include <filesystem>

#include "loom/core/error.h"
#include "loom/io/safetensors.h"
#include "loom/trust/sodium_init.h"

namespace loom::trust {

namespace fs = std::filesystem;

namespace {

const char* header(KeyKind k) {
  switch (k) {
    case KeyKind::SignPublic: return "loom-ed25519-public-v1";
    case KeyKind::SignSecret: return "loom-ed25519-secret-v1";
    case KeyKind::Symmetric: return "loom-xchacha20poly1305-key-v1";
  }
  return "";
}

size_t key_bytes(KeyKind k) {
  switch (k) {
    case KeyKind::SignPublic: return crypto_sign_PUBLICKEYBYTES;
    case KeyKind::SignSecret: return crypto_sign_SECRETKEYBYTES;
    case KeyKind::Symmetric: return crypto_aead_xchacha20poly1305_ietf_KEYBYTES;
  }
  return 0;
}

void write_key(const std::string& path, KeyKind kind, const unsigned char* key, bool secret) {
  LOOM_CHECK(!fs::exists(path), path, ": already exists; refusing to overwrite a key (remove it first)");
  std::string hex(2 * key_bytes(kind) + 1, '\0');
  sodium_bin2hex(hex.data(), hex.size(), key, key_bytes(kind));
  hex.pop_back();
  const std::string text = std::string(header(kind)) + "\n" + hex + "\n";
  const fs::path parent = fs::path(path).parent_path();
  if (!parent.empty()) fs::create_directories(parent);
  io::write_file_atomic(path, text);
  if (secret) fs::permissions(path, fs::perms::owner_read | fs::perms::owner_write, fs::perm_options::replace);
  sodium_memzero(hex.data(), hex.size());
}

}  // namespace

void keygen_signing(const std::string& prefix) {
  ensure_sodium();
  unsigned char pk[crypto_sign_PUBLICKEYBYTES], sk[crypto_sign_SECRETKEYBYTES];
  crypto_sign_keypair(pk, sk);
  LOOM_CHECK(!fs::exists(prefix + ".pub"), prefix, ".pub: already exists; refusing to overwrite a key");
  write_key(prefix + ".key", KeyKind::SignSecret, sk, true);
  write_key(prefix + ".pub", KeyKind::SignPublic, pk, false);
  sodium_memzero(sk, sizeof sk);
}

void keygen_symmetric(const std::string& path) {
  ensure_sodium();
  unsigned char k[crypto_aead_xchacha20poly1305_ietf_KEYBYTES];
  crypto_aead_xchacha20poly1305_ietf_keygen(k);
  write_key(path, KeyKind::Symmetric, k, true);
  sodium_memzero(k, sizeof k);
}

std::vector<unsigned char> read_key(const std::string& path, KeyKind kind) {
  ensure_sodium();
  LOOM_CHECK(fs::is_regular_file(path), path, ": key file not found");
  std::string text = read_all(path);
  const std::string want = header(kind);
  const size_t nl = text.find('\n');
  const std::string first = text.substr(0, nl);
  LOOM_CHECK(first == want, path, ": not a ", want, " key file (its first line is '", first.substr(0, 40),
             "'; expected '", want, "')");
  std::string hex = nl == std::string::npos ? "" : text.substr(nl + 1);
  while (!hex.empty() && (hex.back() == '\n' || hex.back() == '\r' || hex.back() == ' ')) hex.pop_back();
  std::vector<unsigned char> key(key_bytes(kind));
  size_t len = 0;
  const int rc = sodium_hex2bin(key.data(), key.size(), hex.data(), hex.size(), nullptr, &len, nullptr);
  sodium_memzero(text.data(), text.size());
  sodium_memzero(hex.data(), hex.size());
  LOOM_CHECK(rc == 0 && len == key.size(), path, ": the key must be ", key.size(), " bytes as ", 2 * key.size(),
             " hex digits on line 2");
  return key;
}

}  // namespace loom::trust
