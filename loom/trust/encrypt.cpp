// XChaCha20-Poly1305 rather than AES-256-GCM: its 192-bit nonce can be drawn at random for every file with no
// risk of reuse, and libsodium provides it on every CPU (its AES-GCM needs AES-NI).
#include "loom/trust/encrypt.h"

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
constexpr size_t kNonce = crypto_aead_xchacha20poly1305_ietf_NPUBBYTES;
constexpr size_t kTag = crypto_aead_xchacha20poly1305_ietf_ABYTES;

std::string associated(const std::string& name) { return std::string(kEncMagic) + name; }

int convert_run(const std::string& dir, const std::string& key_file, bool encrypt) {
  LOOM_CHECK(fs::is_directory(dir), dir, ": not a folder");
  auto key = read_key(key_file, KeyKind::Symmetric);
  int changed = 0;
  for (const auto& e : fs::recursive_directory_iterator(dir)) {
    if (!e.is_regular_file()) continue;
    const std::string rel = fs::relative(e.path(), dir).generic_string();
    if (rel == kManifestFile || rel == kSignatureFile || rel.ends_with(".tmp")) continue;
    const std::string bytes = read_all(e.path().string());
    if (is_encrypted(bytes) == encrypt) continue;
    io::write_file_atomic(e.path().string(), encrypt ? encrypt_bytes(bytes, key, rel)
                                                     : decrypt_bytes(bytes, key, rel, e.path().string()));
    ++changed;
  }
  sodium_memzero(key.data(), key.size());
  if (changed && fs::exists(fs::path(dir) / kManifestFile)) {
    write_manifest(dir);
    fs::remove(fs::path(dir) / kSignatureFile);
  }
  return changed;
}
}  // namespace

bool is_encrypted(std::string_view bytes) { return bytes.substr(0, kEncMagic.size()) == kEncMagic; }

std::string encrypt_bytes(std::string_view plain, const std::vector<unsigned char>& key, const std::string& name) {
  ensure_sodium();
  LOOM_CHECK(key.size() == crypto_aead_xchacha20poly1305_ietf_KEYBYTES, "encrypt: wrong key size");
  std::string out(kEncMagic.size() + kNonce + plain.size() + kTag, '\0');
  std::copy(kEncMagic.begin(), kEncMagic.end(), out.begin());
  auto* nonce = reinterpret_cast<unsigned char*>(out.data() + kEncMagic.size());
  randombytes_buf(nonce, kNonce);
  const std::string ad = associated(name);
  unsigned long long clen = 0;
  crypto_aead_xchacha20poly1305_ietf_encrypt(nonce + kNonce, &clen, reinterpret_cast<const unsigned char*>(plain.data()),
                                             plain.size(), reinterpret_cast<const unsigned char*>(ad.data()),
                                             ad.size(), nullptr, nonce, key.data());
  out.resize(kEncMagic.size() + kNonce + clen);
  return out;
}

std::string decrypt_bytes(std::string_view sealed, const std::vector<unsigned char>& key, const std::string& name,
                          const std::string& where) {
  ensure_sodium();
  LOOM_CHECK(is_encrypted(sealed), where, ": not an encrypted loom file (no LOOMENC1 header)");
  LOOM_CHECK(sealed.size() >= kEncMagic.size() + kNonce + kTag, where, ": encrypted file truncated (",
             sealed.size(), " bytes; at least ", kEncMagic.size() + kNonce + kTag, " expected)");
  const auto* nonce = reinterpret_cast<const unsigned char*>(sealed.data() + kEncMagic.size());
  const size_t clen = sealed.size() - kEncMagic.size() - kNonce;
  std::string plain(clen - kTag, '\0');
  const std::string ad = associated(name);
  unsigned long long plen = 0;
  const int rc = crypto_aead_xchacha20poly1305_ietf_decrypt(
      reinterpret_cast<unsigned char*>(plain.data()), &plen, nullptr, nonce + kNonce, clen,
      reinterpret_cast<const unsigned char*>(ad.data()), ad.size(), nonce, key.data());
  LOOM_CHECK(rc == 0, where, ": authentication failed: wrong key, or the file was changed after encryption");
  plain.resize(plen);
  return plain;
}

int encrypt_run(const std::string& dir, const std::string& key_file) { return convert_run(dir, key_file, true); }
int decrypt_run(const std::string& dir, const std::string& key_file) { return convert_run(dir, key_file, false); }

}  // namespace loom::trust
