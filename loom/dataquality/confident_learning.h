// Confident learning (Northcutt, Jiang & Chuang 2021) as cleanlab defines it: from out-of-sample predicted
// probabilities and the given labels, per-class thresholds, the confident joint, the estimated noise matrix
// and the label issues found by prune_by_noise_rate, ranked by self-confidence (most likely errors first).
//   std::vector<double> p = ...;  // N x K out-of-sample probabilities, row-major (see cross_val.h)
//   auto r = dataquality::find_label_issues(p, labels, K);
//   for (const auto& i : r.issues) std::cout << i.index << " " << i.given << " -> " << i.suggested << "\n";
#pragma once
#include <cstdint>
#include <string>
#include <vector>

namespace loom::dataquality {

struct LabelIssue {
  int64_t index = 0;      // sample index in the dataset
  int64_t given = 0;      // the label the data carries
  int64_t suggested = 0;  // the most probable other class
  double score = 0;       // label quality: the predicted probability of the given label (low = likely wrong)
};

struct ConfidentLearningOptions {
  int64_t min_examples_per_class = 1;  // prune never leaves a given class with fewer examples (cleanlab's default)
  bool drop_agreeing = true;  // never flag an example whose argmax prediction equals its label (cleanlab 2.x)
};

struct ConfidentLearningResult {
  int64_t num_classes = 0;
  std::vector<double> thresholds;         // t_j: mean p_j over the examples labelled j
  std::vector<int64_t> confident_joint;   // K x K, [given][true guess], before calibration
  std::vector<int64_t> calibrated_joint;  // K x K, rows rescaled to the given-label counts, total N
  std::vector<double> joint;              // K x K: the estimated P(given = i, true = j)
  std::vector<double> noise_matrix;       // K x K: P(given = i | true = j) (columns sum to 1)
  std::vector<double> prior;              // K: the estimated P(true = j)
  std::vector<LabelIssue> issues;         // prune_by_noise_rate, ranked by score ascending
};

// probs: N x K row-major (each row a probability distribution); labels: N values in 0..K-1.
// Throws loom::Error on mismatched sizes, labels out of range or non-finite/negative probabilities.
ConfidentLearningResult find_label_issues(const std::vector<double>& probs, const std::vector<int64_t>& labels,
                                          int64_t num_classes, const ConfidentLearningOptions& o = {});

// cleanlab's round_preserving_row_totals: rounds each row of a K x K matrix to integers whose row sum is the
// rounded row total, giving the leftover units to the largest fractional parts.
std::vector<int64_t> round_preserving_row_totals(const std::vector<double>& m, int64_t k);

// A human-readable summary: counts, thresholds and the noise matrix with class names (or indices).
std::string summary(const ConfidentLearningResult& r, const std::vector<std::string>& classes, int64_t n);

// issues.csv: "index,given_label,suggested_label,score", most likely errors first (atomic write). Labels are
// written as class indices; class_names, when given, add given_name and suggested_name columns.
void write_issues_csv(const std::string& path, const std::vector<LabelIssue>& issues,
                      const std::vector<std::string>& class_names = {});

}  // namespace loom::dataquality
