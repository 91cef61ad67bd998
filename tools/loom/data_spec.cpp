#include "data_spec.h"

#include <algorithm>
#include <cmath>
#include <filesystem>
#include <numeric>
#include <span>

#include "args.h"
#include "loom/data/cifar.h"
#include "loom/data/image_folder.h"
#include "loom/data/mnist.h"
#include "loom/data/transforms.h"
#include "loom/ops/ops.h"

namespace loom::cli {

namespace fs = std::filesystem;

std::pair<std::string, std::string> split_spec(const std::string& spec) {
  const size_t colon = spec.find(':');
  std::string kind = spec.substr(0, colon), path = colon == std::string::npos ? "" : spec.substr(colon + 1);
  static const std::vector<std::string> kinds = {"fashion-mnist", "mnist", "cifar10", "imagefolder", "csv"};
  if (std::find(kinds.begin(), kinds.end(), kind) == kinds.end())
    throw UsageError("--data: unknown dataset '" + kind +
                     "' (use fashion-mnist, mnist:DIR, cifar10:DIR, imagefolder:DIR or csv:FILE)");
  if (kind != "fashion-mnist" && path.empty())
    throw UsageError("--data: " + kind + " needs a path (" + kind + (kind == "csv" ? ":FILE)" : ":DIR)"));
  if (kind == "fashion-mnist" && path.empty()) path = data::kFashionMnistDir;
  return {kind, path};
}

void check_data_options(const DataOptions& o) {
  const auto [kind, path] = split_spec(o.spec);
  if (kind == "csv" && o.target.empty()) throw UsageError("--data csv:FILE needs --target COLUMN");
  if (kind != "csv" && !o.target.empty()) throw UsageError("--target applies to csv data only");
}

std::vector<std::string> default_classes(const std::string& kind, int64_t num_classes) {
  std::vector<std::string> c;
  if (kind == "fashion-mnist")
    c = data::fashion_mnist_classes();
  else if (kind == "mnist")
    c = data::mnist_classes();
  else if (kind == "cifar10")
    c = data::cifar10_classes();
  if (int64_t(c.size()) != num_classes) {
    c.clear();
    for (int64_t i = 0; i < num_classes; ++i) c.push_back(std::to_string(i));
  }
  return c;
}

Tensor apply_normalization(const Tensor& x, const Normalization& n) {
  if (n.empty()) return x;
  const int64_t c = int64_t(n.mean.size());
  LOOM_CHECK(x.dim() >= 3 && x.size(-3) == c, "normalisation for ", c, " channels applied to images of shape ",
             x.shape());
  const Tensor m = tensor(n.mean, {c, 1, 1}), s = tensor(n.std, {c, 1, 1});
  return (x - m) / s;
}

namespace {

// Normalises whole batches at once, so the base dataset's fast get_batch (a gather of u8 rows) still applies.
class NormalizedDataset : public data::Dataset {
 public:
  NormalizedDataset(data::DatasetPtr base, Normalization n) : base_(std::move(base)), n_(std::move(n)) {}
  int64_t size() const override { return base_->size(); }
  data::Example get(int64_t i) const override {
    data::Example e = base_->get(i);
    return {apply_normalization(e.data, n_), e.target};
  }
  data::Batch get_batch(std::span<const int64_t> idx) const override {
    data::Batch b = base_->get_batch(idx);
    return {apply_normalization(b.data, n_), b.target};
  }
  void set_epoch(int64_t e) override { base_->set_epoch(e); }

 private:
  data::DatasetPtr base_;
  Normalization n_;
};

// Per-channel mean and std of the first (up to) 5000 training images: enough for 3 significant digits and
// deterministic, whatever the shuffle.
Normalization measure(const data::DatasetPtr& ds) {
  const int64_t n = std::min<int64_t>(ds->size(), 5000);
  std::vector<int64_t> idx(static_cast<size_t>(n));
  std::iota(idx.begin(), idx.end(), 0);
  const Tensor x = ds->get_batch(idx).data.to(DType::f64);  // (N, C, H, W)
  Normalization r;
  r.mean = x.mean({0, 2, 3}).tolist();
  r.std = x.std({0, 2, 3}, 0).tolist();
  return r;
}

data::DatasetPtr first_n(data::DatasetPtr ds, int64_t n) {
  if (!ds || n <= 0 || n >= ds->size()) return ds;
  std::vector<int64_t> idx(static_cast<size_t>(n));
  std::iota(idx.begin(), idx.end(), 0);
  return std::make_shared<data::Subset>(ds, idx);
}

// A random (seeded) split of `ds` into train and test parts, test_fraction of it held out.
std::pair<data::DatasetPtr, data::DatasetPtr> split(data::DatasetPtr ds, double test_fraction, uint64_t seed) {
  const int64_t n = ds->size(), n_test = std::max<int64_t>(1, int64_t(double(n) * test_fraction));
  LOOM_CHECK(n >= 2, "the dataset has only ", n, " samples; at least 2 are needed to hold out a test split");
  Generator g(seed);
  auto parts = data::random_split(ds, {n - n_test, n_test}, g);
  return {parts[0], parts[1]};
}

void load_images(const std::string& dir, const DataOptions& o, LoadedData& d) {
  LOOM_CHECK(fs::is_directory(dir), dir, ": no such folder (imagefolder:DIR needs one sub-folder per class)");
  const data::ImageFolderOptions io{.channels = 3};
  const int64_t s = o.image_size;
  auto wrap = [&](std::shared_ptr<data::ImageFolder> f) {
    // resize_image takes the decoded (H, W, C) image whatever its size (Resize's layout guess needs H > 4), with
    // antialiasing as torchvision's Resize on PIL images; predict (cmd_predict.cpp) does the same.
    const data::TransformFn resize = [s](const Tensor& x, Generator&) { return data::resize_image(x, s, s); };
    return data::transformed(f, data::Compose({resize, data::ToTensor()}), {.seed = o.seed});
  };
  std::string test_dir;
  for (const char* t : {"test", "val"})
    if (fs::is_directory(fs::path(dir) / t)) test_dir = (fs::path(dir) / t).string();
  if (fs::is_directory(fs::path(dir) / "train") && !test_dir.empty()) {
    auto tr = std::make_shared<data::ImageFolder>((fs::path(dir) / "train").string(), io);
    auto te = std::make_shared<data::ImageFolder>(test_dir, io);
    LOOM_CHECK(tr->classes() == te->classes(), dir, ": the train and ", fs::path(test_dir).filename().string(),
               " folders have different class sub-folders");
    d.classes = tr->classes();
    d.train = wrap(tr), d.test = wrap(te);
  } else {
    auto all = std::make_shared<data::ImageFolder>(dir, io);
    d.classes = all->classes();
    std::tie(d.train, d.test) = split(wrap(all), 0.2, o.seed);
  }
  LOOM_CHECK(d.classes.size() >= 2, dir, ": found ", d.classes.size(), " class folder(s); at least 2 are needed");
  d.shape = {.channels = 3, .height = s, .width = s, .num_classes = int64_t(d.classes.size())};
}

}  // namespace

data::DatasetPtr normalized(data::DatasetPtr ds, const Normalization& n) {
  if (!ds || n.empty()) return ds;
  return std::make_shared<NormalizedDataset>(std::move(ds), n);
}

LoadedData load_data(const DataOptions& o) {
  check_data_options(o);
  const auto [kind, path] = split_spec(o.spec);
  LoadedData d;
  d.kind = kind;
  if (kind == "fashion-mnist" || kind == "mnist") {
    LOOM_CHECK(fs::is_directory(path), path, ": no such folder",
               kind == "fashion-mnist" ? " (install Debian's dataset-fashion-mnist package: apt-get install "
                                         "dataset-fashion-mnist)"
                                       : "");
    if (o.load_train) d.train = data::load_mnist(path, true);
    d.test = data::load_mnist(path, false);
    d.shape = {.channels = 1, .height = 28, .width = 28, .num_classes = 10};
    d.classes = kind == "mnist" ? data::mnist_classes() : data::fashion_mnist_classes();
  } else if (kind == "cifar10") {
    LOOM_CHECK(fs::is_directory(path), path,
               ": no such folder (cifar10:DIR needs the binary batches "
               "data_batch_1.bin .. data_batch_5.bin and test_batch.bin)");
    if (o.load_train) d.train = data::load_cifar10(path, true);
    d.test = data::load_cifar10(path, false);
    d.shape = {.channels = 3, .height = 32, .width = 32, .num_classes = 10};
    d.classes = data::cifar10_classes();
  } else if (kind == "imagefolder") {
    load_images(path, o, d);
  } else {  // csv
    auto s = data::load_csv(path, {.target = o.target, .test_fraction = 0.2, .seed = o.seed, .standardize = true});
    d.train = s.train, d.test = s.test;
    d.regression = true;
    d.shape = {.features = int64_t(s.feature_names.size()), .num_classes = 1};
  }
  d.train = first_n(d.train, o.train_limit);
  d.test = first_n(d.test, o.test_limit);
  if (!d.regression && (!o.norm.empty() || (o.normalize && d.train))) {
    const bool measured = o.norm.empty();
    d.norm = measured ? measure(d.train) : o.norm;
    LOOM_CHECK(int64_t(d.norm.mean.size()) == d.shape.channels && d.norm.std.size() == d.norm.mean.size(),
               "the normalisation has ", d.norm.mean.size(), " channels, the data ", d.shape.channels);
    // A std of 0 (a constant channel) would divide by zero and turn every input into inf/NaN.
    for (size_t ch = 0; ch < d.norm.std.size(); ++ch)
      LOOM_CHECK(std::isfinite(d.norm.mean[ch]) && std::isfinite(d.norm.std[ch]) && d.norm.std[ch] > 1e-12,
                 measured ? o.spec + ": channel " + std::to_string(ch) +
                                " of the training images is constant (std 0), so it cannot be normalised; pass "
                                "--no-normalize"
                          : "the saved normalisation has mean " + std::to_string(d.norm.mean[ch]) + " and std " +
                                std::to_string(d.norm.std[ch]) + " for channel " + std::to_string(ch) +
                                " (expected finite values and std > 0)");
    d.train = normalized(d.train, d.norm);
    d.test = normalized(d.test, d.norm);
  }
  return d;
}

}  // namespace loom::cli
