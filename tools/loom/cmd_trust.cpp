// loom verify / keygen / sign / encrypt / decrypt: run-folder manifests, Ed25519 signatures and encryption at
// rest (loom/trust/). Keys are read from files and never printed.
//   loom keygen --out keys/alice          (keys/alice.pub + keys/alice.key)   loom keygen --symmetric --out k.key
//   loom sign --key keys/alice.key runs/cnn      loom verify --pub keys/alice.pub runs/cnn
//   loom encrypt --key-file k.key runs/cnn       loom encrypt --decrypt --key-file k.key runs/cnn
#include <algorithm>
#include <filesystem>
#include <iostream>

#include "args.h"
#include "commands.h"
#include "loom/trust/encrypt.h"
#include "loom/trust/keys.h"
#include "loom/trust/load.h"
#include "loom/trust/manifest.h"
#include "loom/trust/seal.h"
#include "loom/trust/sign.h"

namespace loom::cli {

int cmd_verify(const Argv& argv) {
  std::string pub;
  bool write = false;
  std::vector<std::string> dirs;
  Args a("loom verify", "Check a run folder against its manifest (SHA-256 of every file and tensor) and, with --pub,\n"
                        "its Ed25519 signature. Exit 0 when intact, 1 naming each changed file or tensor.");
  a.option("--pub", &pub, "FILE", "public key (from loom keygen): also require a valid signature by it");
  a.flag("--write", &write, "(re)write the manifest from the files as they are now instead of checking");
  a.positionals(&dirs, "DIR", "run folders", 1);
  a.parse(argv);
  int bad = 0;
  for (const auto& d : dirs) {
    if (write) {
      trust::write_manifest(d);
      std::cout << d << ": wrote " << trust::kManifestFile << "\n";
      continue;
    }
    const auto problems = pub.empty() ? trust::verify_manifest(d) : trust::verify_run(d, pub);
    if (problems.empty()) {
      std::cout << d << ": OK" << (pub.empty() ? "" : " (signature valid)") << "\n";
    } else {
      ++bad;
      std::cerr << d << ": FAILED\n";
      for (const auto& p : problems) std::cerr << "  " << p << "\n";
    }
  }
  return bad ? 1 : 0;
}

int cmd_keygen(const Argv& argv) {
  std::string out;
  bool symmetric = false;
  Args a("loom keygen", "Make a key: an Ed25519 signing pair (OUT.pub, OUT.key) or, with --symmetric, a 256-bit\n"
                        "encryption key in OUT. Secret files are owner-only (0600); existing files are never replaced.");
  a.option("--out", &out, "PATH", "where to write (required)");
  a.flag("--symmetric", &symmetric, "an encryption key for loom encrypt instead of a signing pair");
  a.parse(argv);
  if (out.empty()) throw UsageError("--out is required");
  if (symmetric) {
    trust::keygen_symmetric(out);
    std::cout << "wrote the encryption key to " << out << " (keep it secret)\n";
  } else {
    trust::keygen_signing(out);
    std::cout << "wrote " << out << ".pub (share it) and " << out << ".key (keep it secret)\n";
  }
  return 0;
}

int cmd_sign(const Argv& argv) {
  std::string key;
  std::vector<std::string> dirs;
  Args a("loom sign", "Write a run folder's manifest and sign it with an Ed25519 secret key (loom keygen).");
  a.option("--key", &key, "FILE", "secret key file (required)");
  a.positionals(&dirs, "DIR", "run folders", 1);
  a.parse(argv);
  if (key.empty()) throw UsageError("--key is required");
  for (const auto& d : dirs) {
    trust::sign_run(d, key);
    std::cout << d << ": signed (" << trust::kManifestFile << ", " << trust::kSignatureFile << ")\n";
  }
  return 0;
}

int cmd_encrypt(const Argv& argv) {
  std::string key;
  bool decrypt = false;
  std::vector<std::string> dirs;
  Args a("loom encrypt", "Encrypt every file of a run folder in place with XChaCha20-Poly1305 (a fresh random nonce\n"
                         "per file), or --decrypt it. Loading an encrypted run needs --key-file (or LOOM_KEY_FILE).");
  a.option("--key-file", &key, "FILE", "256-bit key from loom keygen --symmetric (required)");
  a.flag("--decrypt", &decrypt, "decrypt instead");
  a.positionals(&dirs, "DIR", "run folders", 1);
  a.parse(argv);
  if (key.empty()) throw UsageError("--key-file is required");
  for (const auto& d : dirs) {
    const int n = decrypt ? trust::decrypt_run(d, key) : trust::encrypt_run(d, key);
    std::cout << d << ": " << (decrypt ? "decrypted " : "encrypted ") << n << " file(s)\n";
  }
  return 0;
}

namespace {
std::string g_encrypt_key_file;  // --encrypt-key-file of this command ("" : the run is written in plaintext)
}  // namespace

Argv take_trust_options(const Argv& argv, bool writes_runs) {
  trust::LoadPolicy p = trust::load_policy();
  Argv rest;
  for (size_t i = 0; i < argv.size(); ++i) {
    const std::string& s = argv[i];
    auto value = [&](const char* name) {
      if (i + 1 >= argv.size()) throw UsageError(std::string(name) + " needs a value");
      return argv[++i];
    };
    if (s == "--require-signature") p.require_signature = value("--require-signature");
    else if (s.starts_with("--require-signature=")) p.require_signature = s.substr(20);
    else if (s == "--skip-verify") p.skip_verify = true;
    else if (s == "--key-file") p.key_file = value("--key-file");
    else if (s.starts_with("--key-file=")) p.key_file = s.substr(11);
    else if (s == "--encrypt-key-file") g_encrypt_key_file = value("--encrypt-key-file");
    else if (s.starts_with("--encrypt-key-file=")) g_encrypt_key_file = s.substr(19);
    else rest.push_back(s);
  }
  if (!g_encrypt_key_file.empty()) {
    if (!writes_runs) throw UsageError("--encrypt-key-file is for commands that write a run (train, quantize, federate)");
    // Checked now, not after hours of training: the key must exist and be a symmetric key (its bytes stay unread
    // until the run is written, and are never printed).
    auto key = trust::read_key(g_encrypt_key_file, trust::KeyKind::Symmetric);
    std::fill(key.begin(), key.end(), 0);
    // The run's own key also reads it back (a --resume reads its sealed checkpoint before training starts) and
    // reads any other run given without --key-file.
    if (p.key_file.empty()) p.key_file = g_encrypt_key_file;
  }
  trust::set_load_policy(p);
  return rest;
}

void begin_run_folder(const std::string& dir) {
  const std::string read_key = trust::load_policy().key_file;
  if (!g_encrypt_key_file.empty()) {
    // Sealed from the first byte: every file written into the run reaches the disk encrypted (trust/seal.h), and
    // what a resumed run already holds is brought under this key.
    trust::begin_sealed_run(dir, g_encrypt_key_file, read_key);
  } else if (!read_key.empty() && std::filesystem::is_directory(dir)) {
    // A resumed encrypted run continued without --encrypt-key-file is written in plaintext from now on: decrypted
    // first, with the key it was read with.
    trust::decrypt_run(dir, read_key);
  }
  trust::remove_manifest(dir);  // a killed run must not keep a stale manifest
}

void finish_run_folder(const std::string& dir) {
  trust::write_manifest(dir);
  if (g_encrypt_key_file.empty()) return;
  // Every write was sealed already; encrypt_run is the safety net for a file written around io's writers (it
  // rewrites the manifest if it changes anything).
  trust::encrypt_run(dir, g_encrypt_key_file);
  trust::end_sealed_run(dir);
}

}  // namespace loom::cli
