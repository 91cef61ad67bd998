// Weights and training checkpoints as safetensors files.
//   train::save_weights("run/model.safetensors", *model);            // PyTorch state-dict names: loads in torch
//   train::load_weights("run/model.safetensors", *model);            // or a state_dict saved by PyTorch
//   train::Checkpoint c = train::load_checkpoint("run/checkpoint.safetensors");   // c.model, c.optimizer, ...
// A training checkpoint is one safetensors file: tensors "model.<key>" and "optimizer.<key>", and in the
// metadata "loom.kind" = "training-checkpoint", "loom.optimizer" (name and scalars as JSON) plus whatever
// sections the caller adds (the Trainer stores its state as JSON under "loom.trainer"). Files are written
// atomically (temp file, fsync, rename), so a kill during a save leaves the previous checkpoint intact.
#pragma once
#include <string>

#include "loom/io/safetensors.h"
#include "loom/nn/module.h"
#include "loom/optim/optimizer.h"

namespace loom::train {

// model.safetensors: the state dict under PyTorch's names, metadata {"format": "pt"} plus `metadata`.
void save_weights(const std::string& path, const nn::Module& model, const io::Metadata& metadata = {});
// The weights of a model file or of a training checkpoint ("model." prefix stripped), with the file's metadata.
nn::StateDict read_weights(const std::string& path, io::Metadata* metadata = nullptr);
// read_weights + load_state_dict; errors name the file and the keys or shapes that do not match.
io::Metadata load_weights(const std::string& path, nn::Module& model, bool strict = true);

struct Checkpoint {
  nn::StateDict model;
  std::string optimizer_name;  // "Adam", "SGD", ... ("" when the checkpoint has no optimizer)
  optim::StateDict optimizer;
  io::Metadata metadata;  // the caller's sections (loom.kind / loom.optimizer excluded)
};

void save_checkpoint(const std::string& path, const Checkpoint& c);
// Validates the file (safetensors structure, kind, optimizer section) and throws naming the file.
Checkpoint load_checkpoint(const std::string& path);
// Whether a parsed file is a training checkpoint rather than plain weights.
bool is_training_checkpoint(const io::SafetensorsFile& f);

// A snapshot of a module's weights as an owned copy (clone), e.g. to compare before/after.
nn::StateDict clone_state(const nn::Module& model);

}  // namespace loom::train
