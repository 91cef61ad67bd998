// The --data argument of the loom command: which dataset, where, and how it is split.
//   DataOptions o{.spec = "cifar10:/data/cifar-10-batches-bin", .seed = 0};
//   LoadedData d = load_data(o);        // d.train, d.test, d.shape (3x32x32, 10 classes), d.classes
// Forms: fashion-mnist[:DIR], mnist:DIR, cifar10:DIR, imagefolder:DIR (DIR/train + DIR/test or DIR/val, or
// one folder split 80/20), csv:FILE (with --target COL; 20% held out as the test split).
#pragma once
#include <cstdint>
#include <string>
#include <vector>

#include "loom/data/csv.h"
#include "loom/data/dataset.h"
#include "loom/models/models.h"

namespace loom::cli {

// Per-channel input normalisation, (x - mean[c]) / std[c]; empty means none.
struct Normalization {
  std::vector<double> mean, std;
  bool empty() const { return mean.empty(); }
};

struct DataOptions {
  std::string spec = "fashion-mnist";
  std::string target = {};  // csv: the target column
  int64_t image_size = 32;  // imagefolder: images are resized to image_size x image_size
  uint64_t seed = 0;        // csv / imagefolder splits
  int64_t train_limit = 0;  // > 0: only the first N training samples
  int64_t test_limit = 0;   // > 0: only the first N test samples
  bool load_train = true;   // false: only the test split is needed (eval)
  // Images: normalise each channel with statistics of the training split (`norm`, when given, is used
  // instead: a saved model brings the values it was trained with).
  bool normalize = true;
  Normalization norm = {};
};

struct LoadedData {
  data::DatasetPtr train, test;
  models::ModelSpec shape;
  std::vector<std::string> classes;  // by label; empty for regression
  bool regression = false;
  Normalization norm;                // what was applied to the inputs
  std::string kind;                  // fashion-mnist, mnist, cifar10, imagefolder, csv
};

// Splits "kind[:path]"; throws UsageError for an unknown kind or a missing path.
std::pair<std::string, std::string> split_spec(const std::string& spec);
// Checks the --data syntax (and --target for csv) without reading anything; throws UsageError.
void check_data_options(const DataOptions& o);
LoadedData load_data(const DataOptions& o);

// Wraps an image dataset so its samples and batches come out normalised.
data::DatasetPtr normalized(data::DatasetPtr ds, const Normalization& n);
// (x - mean) / std over the channel dim of (C, H, W) or (N, C, H, W) images.
Tensor apply_normalization(const Tensor& x, const Normalization& n);

// The classes of the known datasets, for models saved without a class list.
std::vector<std::string> default_classes(const std::string& kind, int64_t num_classes);

}  // namespace loom::cli
