// Checked loading of run files: the library's load paths read weights through read_run_file, which checks the
// folder's manifest (when it has one), its signature (when required) and decrypts (when encrypted) — all in
// memory, before any byte reaches a parser.
//   trust::set_load_policy({.key_file = "keys/run.key", .require_signature = "keys/alice.pub"});
//   std::string bytes = trust::read_run_file("runs/cnn/model.safetensors");
//   trust::check_run("runs/cnn");   // the whole folder; throws naming every changed file or tensor
// Defaults come from the environment: LOOM_KEY_FILE, LOOM_REQUIRE_SIGNATURE (a public key file),
// LOOM_SKIP_VERIFY=1.
#pragma once
#include <string>

namespace loom::trust {

struct LoadPolicy {
  std::string key_file;           // symmetric key for encrypted runs ("" : encrypted files are an error)
  std::string require_signature;  // public key file: refuse runs not signed by it ("" : no signature needed)
  bool skip_verify = false;       // do not check the manifest (a damaged tensor then loads as it is)
};

LoadPolicy load_policy();
void set_load_policy(const LoadPolicy& p);

// The plaintext bytes of a file inside a run folder, after the checks the policy asks for. Errors name the
// file and the changed tensor ("runs/cnn: model.safetensors: tensor '0.weight' changed").
std::string read_run_file(const std::string& path);

// Verifies a whole run folder under the policy (manifest; signature when required). Throws loom::Error listing
// the problems. A folder without a manifest passes unless a signature is required.
void check_run(const std::string& dir);

}  // namespace loom::trust
