// Automatic labelling by pseudo-labelling (self-training): train on the labelled samples, label the
// unlabelled ones the model is confident about (probability >= threshold), retrain on both, repeat.
//   auto r = dataquality::autolabel(train_set, labelled_idx, factory,
//                                   {.threshold = 0.95, .rounds = 3, .training = {.min_steps = 600}}, test_set);
//   r.rounds[0].test_accuracy;  r.rounds.back().test_accuracy;   // labelled only vs. after self-training
//   r.labels[i], r.confidence[i], r.source[i]                    // for every training sample
#pragma once
#include <cmath>
#include <functional>
#include <vector>

#include "loom/dataquality/classifier_fit.h"

namespace loom::dataquality {

struct AutolabelOptions {
  double threshold = 0.95;  // pseudo-label a sample when its top probability reaches this
  int64_t rounds = 3;       // pseudo-labelling rounds after the first (labelled-only) model
  // Class-balanced: instead of everything above the threshold, the m most confident samples predicted as each
  // class, m = (the count above the threshold) / classes, so an easy class cannot swamp the rest.
  bool class_balanced = false;
  // The labelled samples are repeated so they make up at least this share of each round's training set: the
  // given labels keep their weight however many pseudo-labels join (0: no repetition).
  double labelled_share = 0.5;
  ClassifierTraining training = {};
  std::function<void(const struct AutolabelRound&)> on_round = nullptr;  // progress
};

struct AutolabelRound {
  int64_t round = 0;           // 0: trained on the labelled samples alone
  int64_t train_samples = 0;   // labelled + pseudo-labelled samples this round's model trained on
  int64_t pseudo_labelled = 0; // pseudo-labels used to train this round's model
  double pseudo_accuracy = NAN;  // their agreement with the hidden true labels (NaN when not known)
  double test_accuracy = NAN;    // the round's model on the test set (NaN without one)
};

enum class LabelSource : int8_t { Given = 0, Pseudo = 1, Predicted = 2 };  // Predicted: below the threshold

struct AutolabelResult {
  std::vector<int64_t> labels;      // every training sample: given, pseudo or (below threshold) predicted
  std::vector<double> confidence;   // 1 for given labels, else the final model's top probability
  std::vector<LabelSource> source;
  std::vector<AutolabelRound> rounds;
  std::shared_ptr<nn::Module> model;  // the last round's model
};

// `train`'s own targets at `labelled` are the given labels; the other samples are unlabelled (their targets,
// when `truth` is given, are read only to report pseudo-label accuracy). `test` (optional) is scored each round.
AutolabelResult autolabel(data::DatasetPtr train, const std::vector<int64_t>& labelled, const ModelFactory& make,
                          const AutolabelOptions& o, data::DatasetPtr test = nullptr,
                          const std::vector<int64_t>* truth = nullptr);

}  // namespace loom::dataquality
