// Ed25519 signatures over a run folder's manifest (which holds the SHA-256 of every file), so one signature
// covers every byte of every file in the run.
//   trust::sign_run("runs/cnn", "keys/alice.key");        // writes manifest.json and manifest.sig
//   auto problems = trust::verify_run("runs/cnn", "keys/alice.pub");   // empty: signed by alice, unchanged
#pragma once
#include <string>
#include <vector>

namespace loom::trust {

// Rewrites DIR/manifest.json from the files as they are now and signs it into DIR/manifest.sig.
void sign_run(const std::string& dir, const std::string& secret_key_file);
// Problems with DIR: a missing or bad signature (checked first, against the public key), then every file or
// tensor that differs from the signed manifest. Empty when the run is intact and signed by that key.
std::vector<std::string> verify_run(const std::string& dir, const std::string& public_key_file);
// Whether DIR's manifest.json carries a valid signature by this key (no file hashes checked).
bool manifest_signature_ok(const std::string& dir, const std::string& public_key_file);
// The same for manifest text already read (a loader that parses the text it checked, so the two cannot differ).
bool manifest_text_signature_ok(const std::string& dir, const std::string& manifest_text,
                                const std::string& public_key_file);

}  // namespace loom::trust
