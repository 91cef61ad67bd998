// Image classifiers and regressors saved by `loom train` (a run folder, its model.safetensors, a training
// checkpoint, or a PyTorch state dict saved as safetensors), rebuilt with their input geometry, class names
// and input normalisation, so the CLI, the server and C++ programs load them the same way.
//   runtime::ClassifierRun r = runtime::load_classifier("runs/cnn");
//   Tensor probs = softmax((*r.model)(runtime::preprocess_image(img, r).unsqueeze(0)), 1);
#pragma once
#include <memory>
#include <string>
#include <vector>

#include "loom/core/tensor.h"
#include "loom/io/safetensors.h"
#include "loom/models/models.h"
#include "loom/nn/container.h"

namespace loom::runtime {

struct ClassifierRun {
  std::shared_ptr<nn::Sequential> model;  // in eval mode
  std::string name;                       // linreg, mlp, lenet, cnn
  models::ModelSpec shape;                // input geometry and number of classes
  std::vector<std::string> classes;       // by label (may be empty)
  std::vector<double> mean, std;          // per-channel input normalisation (empty: none)
  // What it was trained on (from the metadata; data_spec "" when unknown).
  std::string data_spec, target;
  uint64_t seed = 0;
  int64_t image_size = 32;
  std::string path;        // the file the weights came from
  io::Metadata metadata;   // everything the file's header holds
  std::string nonfinite;   // nonfinite_weights() of the file: "" when every weight is finite
};

// `where`: a folder (its model.safetensors, else checkpoint.safetensors) or a file. `model_name` overrides
// (or, for files without loom metadata, supplies) the architecture; the input size is then inferred from the
// weights. Throws loom::Error naming the file on any problem: a missing file, a folder of another model family
// (language model, seq2seq), malformed metadata (naming the key, what was expected and what was found),
// weights that do not fit. Reads through loom::trust (manifest, signature, decryption). Non-finite weights
// are not an error here: `nonfinite` says so and the caller decides (eval warns, predict and serve refuse).
// A pruned run (weight_orig / weight_mask, from `loom prune`) loads with its masks folded into plain weights;
// keep_masks = true sets the pruning parametrisation up instead (prune::identity on each pruned tensor, then
// the masks load), so fine-tuning keeps pruned entries at zero. A structurally pruned run's narrower widths
// come from its "loom.widths" metadata.
ClassifierRun load_classifier(const std::string& where, const std::string& model_name = "", bool keep_masks = false);

// "" when every floating-point weight is finite, else how many NaN/inf values there are and in which tensor
// first ("3 NaN/inf weight value(s) in 1 tensor(s), first '0.weight' (3 of 784)"): a diverged training run
// would otherwise classify (or generate) garbage without a word.
std::string nonfinite_weights(const nn::StateDict& sd);

// An f32 (C, H, W) image in [0, 1] (or a u8 (H, W, C) decoded image) brought to the model's channels and
// size, then normalised: what the model was trained on.
Tensor preprocess_image(const Tensor& image, const ClassifierRun& run);

}  // namespace loom::runtime
