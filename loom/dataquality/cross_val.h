// Out-of-sample predicted probabilities by K-fold cross-validation: K fresh models, each trained with the
// Trainer on K-1 folds and asked about the fold it never saw. What confident learning needs as input.
//   auto p = dataquality::cross_val_probs(train_set, [&] { return models::make_model("cnn", spec); },
//                                         {.folds = 4, .training = {.epochs = 2}});     // N x K, row-major
#pragma once
#include <functional>
#include <string>
#include <vector>

#include "loom/dataquality/classifier_fit.h"

namespace loom::dataquality {

struct CrossValOptions {
  int64_t folds = 5;
  uint64_t seed = 0;  // which samples fall in which fold
  ClassifierTraining training = {};
  // Called after each fold with (fold, folds, held-out accuracy against the given labels).
  std::function<void(int64_t, int64_t, double)> on_fold = nullptr;
};

// probabilities N x num_classes (row-major, in dataset order) and the number of classes.
struct CrossValProbs {
  std::vector<double> probs;
  int64_t num_classes = 0;
};
CrossValProbs cross_val_probs(data::DatasetPtr ds, const ModelFactory& make, const CrossValOptions& o = {});

}  // namespace loom::dataquality
