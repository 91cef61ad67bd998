// What audit-labels, autolabel and show share: the model and data a run folder names, and a classifier
// factory over the seed models.
//   RunChoice r = run_choice(checkpoint_dir);       // r.model "cnn", r.data "fashion-mnist" (from config.json)
//   auto make = classifier_factory("cnn", d.shape);  // each call: a freshly initialised model
#pragma once
#include <string>

#include "data_spec.h"
#include "loom/dataquality/classifier_fit.h"

namespace loom::cli {

struct RunChoice {
  std::string model, data;
};
// Reads DIR/config.json of a `loom train` run; throws loom::Error naming the file when it is missing or lacks
// the model.
RunChoice run_choice(const std::string& dir);

dataquality::ModelFactory classifier_factory(const std::string& model, const models::ModelSpec& shape);

// Checks that the data is a classification image dataset and the model a classifier (UsageError otherwise).
void check_classifier(const std::string& model, const std::string& data_spec);

// The image (C, H, W) in [0, 1] for display: undoes the normalisation the data loader applied.
Tensor displayable(const Tensor& x, const Normalization& n);

}  // namespace loom::cli
