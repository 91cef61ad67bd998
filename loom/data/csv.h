// CSV tables with a header row: pick the target column by name, the rest (or a chosen list) are features.
//   auto s = data::load_csv("houses.csv", {.target = "price", .test_fraction = 0.2, .standardize = true});
//   data::DataLoader loader(s.train, {.batch_size = 32, .shuffle = true});   // data (B, F), target (B, 1)
//   Tensor x_new = s.scaler->apply(raw_features);   // the training split's mean/std
#pragma once
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "loom/core/tensor.h"
#include "loom/data/dataset.h"

namespace loom::data {

struct CsvOptions {
  std::string target = "";             // name of the target column (required)
  std::vector<std::string> features = {};  // feature columns in this order; empty: every column but the target
  char delimiter = ',';
  bool classification = false;         // target as class indices i64 (N) instead of f32 values (N, 1)
  // load_csv only:
  double test_fraction = 0.2;          // share of rows (shuffled with seed) held out as the test split
  uint64_t seed = 0;
  bool standardize = false;            // features: (x - mean) / std with the training split's statistics
  bool standardize_target = false;     // regression targets too (predictions then need scaler.inverse)
};

struct CsvTable {
  Tensor features;                        // f32 (N, F)
  Tensor target;                          // f32 (N, 1), or i64 (N) for classification
  std::vector<std::string> feature_names;
  std::vector<std::string> classes;       // class names by index when the labels were not integers
};

// Parses the file. Fields may be quoted ("a, b" and "" escapes); blank lines are skipped. A row with the
// wrong number of fields or a value that is not a finite number throws naming file:line and the column.
CsvTable read_csv(const std::string& path, const CsvOptions& o);

// Per-column mean and population std of a (N, F) matrix; a constant column gets std 1 (it becomes 0).
struct Standardizer {
  Tensor mean, std;  // f32 (F)
  static Standardizer fit(const Tensor& x);
  Tensor apply(const Tensor& x) const;
  Tensor inverse(const Tensor& x) const;
};

struct CsvSplits {
  std::shared_ptr<TensorDataset> train, test;
  std::vector<std::string> feature_names, classes;
  std::optional<Standardizer> scaler, target_scaler;  // set when standardisation was asked for
};
CsvSplits load_csv(const std::string& path, const CsvOptions& o);

}  // namespace loom::data
