// Encryption at rest with XChaCha20-Poly1305 (libsodium): each file becomes "LOOMENC1", a fresh random 24-byte
// nonce, then the ciphertext and its 16-byte tag. The file's name inside the run is authenticated too, so a
// file cannot be swapped for another one encrypted under the same key. Loading decrypts in memory.
//   trust::encrypt_run("runs/cnn", "keys/run.key");          // every file, in place, atomically
//   std::string plain = trust::decrypt_bytes(bytes, key, "model.safetensors", "runs/cnn/model.safetensors");
//   trust::decrypt_run("runs/cnn", "keys/run.key");
#pragma once
#include <string>
#include <string_view>
#include <vector>

namespace loom::trust {

inline constexpr std::string_view kEncMagic = "LOOMENC1";

bool is_encrypted(std::string_view bytes);
std::string encrypt_bytes(std::string_view plain, const std::vector<unsigned char>& key, const std::string& name);
// Throws loom::Error "WHERE: authentication failed: wrong key, or the file was changed after encryption" when the
// tag does not verify; never returns unauthenticated bytes.
std::string decrypt_bytes(std::string_view sealed, const std::vector<unsigned char>& key, const std::string& name,
                          const std::string& where);

// Encrypts (or decrypts) every file of DIR in place, skipping files already in the wanted state; the manifest,
// when there is one, is rewritten to the new bytes and a signature over the old manifest is removed (sign
// again afterwards). Returns the number of files changed.
int encrypt_run(const std::string& dir, const std::string& key_file);
int decrypt_run(const std::string& dir, const std::string& key_file);

}  // namespace loom::trust
