// Key files for signing (Ed25519) and encryption at rest (XChaCha20-Poly1305), as two-line text files: a
// format line, then the key in hex. Secret files are written owner-only (0600). Keys are never printed: errors
// name the file and what was wrong with it, not its contents.
//   trust::keygen_signing("keys/alice");          // keys/alice.pub, keys/alice.key
//   trust::keygen_symmetric("keys/run.key");
//   auto sk = trust::read_key("keys/alice.key", trust::KeyKind::SignSecret);
#pragma once
#include <string>
#include <vector>

namespace loom::trust {

enum class KeyKind { SignPublic, SignSecret, Symmetric };

// Writes PREFIX.pub and PREFIX.key; refuses to overwrite existing files.
void keygen_signing(const std::string& prefix);
// Writes a fresh 256-bit key to path; refuses to overwrite.
void keygen_symmetric(const std::string& path);
// The raw key bytes; throws naming the file when its format line, length or hex is wrong.
std::vector<unsigned char> read_key(const std::string& path, KeyKind kind);

}  // namespace loom::trust
