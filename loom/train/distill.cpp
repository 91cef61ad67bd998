// Distiller: the teacher side of knowledge distillation. The teacher runs in eval mode (dropout off, batch norm
// on its running statistics: the function it learned, not a noisy sample of it) and without a graph, so its
// forward costs no activation memory and no backward.
#include "loom/train/distill.h"

#include <algorithm>
#include <cmath>

#include "loom/autograd/grad_mode.h"
#include "loom/ops/creation.h"
#include "loom/ops/elementwise.h"
#include "loom/ops/index.h"
#include "loom/ops/reduce.h"
#include "loom/ops/shape.h"

namespace loom::train {

Distiller::Distiller(nn::Module& teacher, DistillationOptions o, std::function<Tensor(const Tensor&)> teacher_input)
    : teacher_(teacher), o_(o), input_(std::move(teacher_input)) {
  // The loss checks these too, but only at the first step: a bad option should fail before any work.
  LOOM_CHECK(std::isfinite(o_.temperature) && o_.temperature > 0,
             "Distiller: temperature must be a finite number > 0, got ", o_.temperature);
  LOOM_CHECK(o_.alpha >= 0 && o_.alpha <= 1, "Distiller: alpha must be in [0, 1], got ", o_.alpha);
}

Tensor Distiller::teacher_logits(const Tensor& x) {
  NoGradGuard ng;
  const bool was_training = teacher_.is_training();
  teacher_.eval();
  Tensor z = teacher_(input_ ? input_(x) : x);
  teacher_.train(was_training);
  return z;
}

Tensor Distiller::loss(const Tensor& student_logits, const Tensor& x, const Tensor& y) {
  return distillation_loss(student_logits, teacher_logits(x), y, o_);
}

void Distiller::cache(const data::Dataset& ds, int64_t batch_size) {
  LOOM_CHECK(batch_size >= 1, "Distiller::cache: batch_size must be >= 1, got ", batch_size);
  const int64_t n = ds.size();
  LOOM_CHECK(n > 0, "Distiller::cache: the dataset is empty");
  std::vector<Tensor> parts;
  std::vector<int64_t> idx;
  for (int64_t i = 0; i < n; i += batch_size) {
    idx.resize(size_t(std::min(batch_size, n - i)));
    for (size_t k = 0; k < idx.size(); ++k) idx[k] = i + int64_t(k);
    parts.push_back(teacher_logits(ds.get_batch(idx).data));
  }
  cache_ = cat(parts, 0);
}

Tensor Distiller::cached_logits(const data::DataLoader& loader, const data::Batch& b) {
  const std::vector<int64_t>& idx = loader.batch_indices();
  LOOM_CHECK(int64_t(idx.size()) == b.data.size(0), "Distiller: the batch has ", b.data.size(0),
             " samples but the loader's batch lists ", idx.size(), " indices (is `loader` the one being trained on?)");
  for (int64_t i : idx)
    LOOM_CHECK(i >= 0 && i < cache_.size(0), "Distiller: sample ", i, " is outside the cache of ", cache_.size(0),
               " samples (the cache was computed on another dataset)");
  Tensor z = index_select(cache_, 0, tensor(idx, {int64_t(idx.size())}, {.dtype = DType::i64, .device = cache_.device()}));
  if (loader.epoch() != checked_epoch_) {
    // Once per epoch: the teacher on this batch must still give the cached logits, else the inputs changed
    // since the cache was made (a random transform) and the cache would teach the wrong targets.
    checked_epoch_ = loader.epoch();
    Tensor fresh = teacher_logits(b.data);
    const double diff = amax(abs(fresh - z)).item(), scale = 1.0 + amax(abs(fresh)).item();
    LOOM_CHECK(diff <= 1e-3 * scale, "Distiller: the cached teacher logits of epoch ", loader.epoch() + 1,
               "'s first batch differ from the teacher's by ", diff,
               ": the inputs change between epochs (random augmentation?), so they cannot be cached; "
               "run the teacher on the fly instead");
  }
  return z;
}

TrainLossFn Distiller::train_loss(const data::DataLoader* loader) {
  LOOM_CHECK(!cached() || loader != nullptr, "Distiller::train_loss: a cached teacher needs the training loader");
  return [this, loader](const Tensor& out, const data::Batch& b) {
    Tensor z = cached() ? cached_logits(*loader, b) : teacher_logits(b.data);
    return distillation_loss(out, z, b.target, o_);
  };
}

}  // namespace loom::train
