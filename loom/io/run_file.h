// How loaders read the files of a run folder (weights, config.json, tokenizer files, checkpoints). Plain bytes by
// default; loom::trust installs its checked reader (trust/load.h: manifest check naming a damaged tensor, required
// signature, decryption with the key) when it is linked, so loaders below trust in the layer order (models, text)
// get the same checks as the classifier loader without depending on trust.
//   io::SafetensorsFile f = io::load_run_safetensors("runs/gpt/model.safetensors");
//   nlohmann::json cfg = io::read_run_json("runs/gpt/config.json");
#pragma once
#include <nlohmann/json.hpp>
#include <string>

#include "loom/io/safetensors.h"

namespace loom::io {

using RunFileReader = std::string (*)(const std::string& path);

// Installs the reader every function below goes through (nullptr: back to plain reading). Process-wide.
void set_run_file_reader(RunFileReader reader);
RunFileReader run_file_reader();

// The bytes of a file inside a run folder, through the installed reader.
std::string read_run_file(const std::string& path);
SafetensorsFile load_run_safetensors(const std::string& path);
nlohmann::json read_run_json(const std::string& path);

// How writes reach the disk while a run is being written encrypted at rest: loom::trust installs a sealer
// (trust/seal.h) and every atomic write (write_file_atomic, save_safetensors) hands it the finished bytes first.
// It replaces `bytes` with their sealed form when `path` lies in a run being sealed, and leaves other files as they
// are. With none installed, writes stream straight to the temp file, unbuffered.
using RunFileSealer = void (*)(const std::string& path, std::string& bytes);
void set_run_file_sealer(RunFileSealer sealer);
RunFileSealer run_file_sealer();

}  // namespace loom::io
