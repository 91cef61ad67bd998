// Automatic labelling by consistency training (FixMatch, Sohn et al. 2020): every step trains on a batch of
// labelled samples and mu times as many unlabelled ones. The model's prediction on a weakly augmented view of
// each unlabelled image (flip + shift), where its top probability reaches the threshold, becomes a hard
// pseudo-label for a strongly augmented view of the same image (strong_augment.h):
//   loss = CE(labelled) + lambda_u * mean over the unlabelled batch of [p_max >= threshold] * CE(strong view)
// An exponential moving average of the weights is the model that is evaluated and labels the pool. The same
// recipe on the labelled samples alone (same initial weights, batches, augmentation, steps, EMA) is the baseline.
//   auto r = dataquality::fixmatch(train, labelled, factory, {.steps = 2000, .weak = {.max_shift = 2, .hflip = true}},
//                                  test, &truth);
//   r.baseline_test_accuracy;  r.test_accuracy;  r.labels[i], r.confidence[i], r.source[i]
#pragma once
#include <cmath>
#include <functional>
#include <memory>
#include <vector>

#include "loom/dataquality/autolabel.h"
#include "loom/dataquality/classifier_fit.h"
#include "loom/dataquality/strong_augment.h"
#include "loom/dataquality/weak_augment.h"

namespace loom::dataquality {

// What one reporting window (report_every steps) of a run did.
struct FixMatchRound {
  bool baseline = false;        // the labelled-only run
  int64_t step = 0;             // steps done at the end of the window
  int64_t unlabelled_seen = 0;  // unlabelled images in the window's batches
  int64_t above_threshold = 0;  // of those, how many got a pseudo-label
  double pseudo_accuracy = NAN; // their agreement with the hidden true labels (NaN when unknown or none)
  double labelled_loss = NAN;   // mean over the window's steps
  double unlabelled_loss = NAN; // mean of the masked term (before lambda_u)
  double test_accuracy = NAN;   // the evaluated model (EMA weights when used) on the test set; NaN without one
  double coverage() const { return unlabelled_seen ? double(above_threshold) / double(unlabelled_seen) : 0.0; }
};

struct FixMatchOptions {
  double threshold = 0.95;  // tau: pseudo-label an unlabelled image when the weak view's top probability reaches it
  int64_t steps = 5000;
  int64_t batch_size = 32;  // labelled images per step
  int64_t mu = 7;           // unlabelled images per step = mu * batch_size
  double lambda_u = 1.0;    // weight of the unlabelled term
  double lr = 1e-3;         // Adam
  bool cosine_lr = false;   // FixMatch's schedule: lr * cos(7 pi t / (16 steps)), ending at 0.2 lr
  double ema_decay = 0.999; // 0: evaluate the trained weights themselves
  int64_t report_every = 500;
  uint64_t seed = 0;        // batch order and augmentation (initialisation comes from the factory)
  Augmentation weak = {.max_shift = 2, .hflip = true};
  StrongAugmentation strong = {};
  // Distribution alignment (ReMixMatch): the weak-view probabilities are multiplied by the labelled class
  // frequencies over a running mean of the model's unlabelled predictions and renormalised before thresholding,
  // so classes the model under-predicts get their share of pseudo-labels.
  bool distribution_alignment = false;
  bool baseline = true;     // also train the labelled-only baseline (first)
  std::function<void(const FixMatchRound&)> on_round = nullptr;
};

struct FixMatchResult {
  std::vector<int64_t> labels;     // every training sample: given, or the final model's prediction
  std::vector<double> confidence;  // 1 for given labels, else the final model's top probability
  std::vector<LabelSource> source; // Pseudo: at or above the threshold, Predicted: below
  std::vector<FixMatchRound> rounds;       // the baseline's windows first (when trained), then FixMatch's
  double baseline_test_accuracy = NAN, test_accuracy = NAN;
  std::shared_ptr<nn::Module> model, baseline_model;  // the evaluated models (EMA weights when used)
};

// `train`'s own targets at `labelled` are the given labels; the other samples are the unlabelled pool (their
// targets, when `truth` is given, are read only to report pseudo-label accuracy). `test` is scored each window.
FixMatchResult fixmatch(data::DatasetPtr train, const std::vector<int64_t>& labelled, const ModelFactory& make,
                        const FixMatchOptions& o, data::DatasetPtr test = nullptr,
                        const std::vector<int64_t>* truth = nullptr);

// The unlabelled term: sum over rows of mask[i] * CE(logits[i], pseudo[i]), divided by `denominator` (the whole
// unlabelled batch, so rows below the threshold count as zeros; passing only the masked rows with a mask of ones
// gives the same value and saves their forward pass). logits (M, K), pseudo i64 (M), mask f32 (M) of 0/1.
Tensor masked_pseudo_label_loss(const Tensor& logits, const Tensor& pseudo, const Tensor& mask, int64_t denominator);

}  // namespace loom::dataquality
