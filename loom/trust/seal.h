// Encryption at rest while a run is being written (`loom train ... --encrypt-key-file K`): between begin and end,
// every file loom writes under DIR through io's atomic writers (weights, checkpoints, config, metrics, pictures,
// tokenizer files) reaches the disk sealed, temp files included, so a kill mid-run leaves no plaintext behind;
// reading them back (a resume) decrypts with the same key. The manifest and signature stay plaintext, as
// encrypt_run leaves them.
//   trust::begin_sealed_run("runs/cnn", "keys/run.key");
//   ... train, checkpoint, resume ...
//   trust::end_sealed_run("runs/cnn");
#pragma once
#include <optional>
#include <string>
#include <vector>

namespace loom::trust {

// Creates DIR if needed and brings the files already in it under KEY_FILE: plaintext ones are encrypted, ones sealed
// under PREVIOUS_KEY_FILE (the key the run was read with, when it differs) are re-sealed. Then seals every later
// write under DIR until end_sealed_run.
void begin_sealed_run(const std::string& dir, const std::string& key_file, const std::string& previous_key_file = "");
void end_sealed_run(const std::string& dir);

// The run being sealed that PATH lies in: its folder and key, and PATH's name inside it (the name the encryption
// authenticates). Empty for any other path.
struct SealedFile {
  std::string dir, name;
  std::vector<unsigned char> key;
};
std::optional<SealedFile> sealed_file(const std::string& path);

}  // namespace loom::trust
