#include "loom/dataquality/classifier_fit.h"
#include "loom/dataquality/weak_augment.h"

#include <numeric>

#include "loom/core/generator.h"

#include "loom/autograd/grad_mode.h"
#include "loom/data/dataloader.h"
#include "loom/ops/ops.h"
#include "loom/optim/adam.h"
#include "loom/train/trainer.h"

namespace loom::dataquality {

void fit_classifier(nn::Module& model, data::DatasetPtr train, const ClassifierTraining& t) {
  LOOM_CHECK(train && train->size() > 0, "fit_classifier: the training set is empty");
  if (t.augment.enabled()) train = std::make_shared<AugmentedDataset>(train, t.augment, t.seed);
  data::DataLoader loader(train, {.batch_size = t.batch_size, .shuffle = true, .seed = t.seed});
  optim::Adam opt(model.parameters(), {.lr = t.lr});
  const int64_t nb = loader.num_batches();
  train::FitOptions fo{.epochs = t.epochs, .optimizer = &opt, .metrics = {}, .progress = t.progress};
  if (t.min_steps > 0 && t.epochs * nb < t.min_steps) fo.steps = t.min_steps;
  train::Trainer trainer(model, fo);
  trainer.fit(loader);
}

Tensor predict_probs(nn::Module& model, data::DatasetPtr ds, int64_t batch_size) {
  data::DataLoader loader(ds, {.batch_size = batch_size});
  NoGradGuard g;
  return softmax(train::predict(model, loader).to(DType::f32), 1).contiguous();
}

double accuracy(nn::Module& model, data::DatasetPtr ds, int64_t batch_size) {
  const std::vector<double> p = predict_probs(model, ds, batch_size).argmax(1).tolist();
  const std::vector<int64_t> y = dataset_labels(ds);
  int64_t right = 0;
  for (size_t i = 0; i < y.size(); ++i) right += int64_t(p[i]) == y[i];
  return y.empty() ? 0.0 : double(right) / double(y.size());
}

std::vector<int64_t> dataset_labels(const data::DatasetPtr& ds) {
  std::vector<int64_t> out;
  out.reserve(size_t(ds->size()));
  for (int64_t s = 0; s < ds->size(); s += 1024) {
    std::vector<int64_t> idx(size_t(std::min<int64_t>(1024, ds->size() - s)));
    std::iota(idx.begin(), idx.end(), s);
    const Tensor y = ds->get_batch(idx).target;
    LOOM_CHECK(y.defined() && y.dim() == 1, "the dataset's targets are not class indices (shape ",
               y.defined() ? y.shape() : Shape{}, ")");
    for (double v : y.tolist()) out.push_back(int64_t(v));
  }
  return out;
}

AugmentedDataset::AugmentedDataset(data::DatasetPtr base, Augmentation a, uint64_t seed)
    : base_(std::move(base)), a_(std::move(a)), seed_(seed) {
  LOOM_CHECK(a_.max_shift >= 0, "augmentation: max_shift must be >= 0, got ", a_.max_shift);
}

data::Example AugmentedDataset::get(int64_t i) const {
  const int64_t idx[1] = {i};
  data::Batch b = get_batch(idx);
  return {b.data.select(0, 0), b.target.defined() ? b.target.select(0, 0) : b.target};
}

data::Batch AugmentedDataset::get_batch(std::span<const int64_t> idx) const {
  data::Batch b = base_->get_batch(idx);
  return {augment_batch(b.data, a_, seed_, epoch_, idx), b.target};
}

RelabelledDataset::RelabelledDataset(data::DatasetPtr base, std::vector<int64_t> indices, std::vector<int64_t> labels)
    : base_(std::move(base)), indices_(std::move(indices)), labels_(std::move(labels)) {
  LOOM_CHECK(indices_.size() == labels_.size(), "RelabelledDataset: ", indices_.size(), " indices but ",
             labels_.size(), " labels");
  for (int64_t i : indices_)
    LOOM_CHECK(i >= 0 && i < base_->size(), "RelabelledDataset: index ", i, " is outside 0..", base_->size() - 1);
}

data::Example RelabelledDataset::get(int64_t i) const {
  return {base_->get(indices_[size_t(i)]).data, scalar_tensor(double(labels_[size_t(i)]), DType::i64)};
}

data::Batch RelabelledDataset::get_batch(std::span<const int64_t> idx) const {
  std::vector<int64_t> base_idx, y;
  for (int64_t i : idx) base_idx.push_back(indices_[size_t(i)]), y.push_back(labels_[size_t(i)]);
  return {base_->get_batch(base_idx).data, tensor(y, {int64_t(y.size())})};
}

}  // namespace loom::dataquality
