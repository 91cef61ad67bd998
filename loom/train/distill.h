// Knowledge distillation inside a training loop: a trained teacher's logits (eval mode, no graph) against the
// student's, through distillation_loss (loom/nn/loss.h: alpha T^2 KL + (1 - alpha) cross-entropy).
//   train::Distiller d(*teacher, {.temperature = 2, .alpha = 0.5});
//   train::fit(*student, loader, {.optimizer = &opt, .train_loss = d.train_loss()});   // teacher on the fly
//   d.cache(*train_set);  ... {.train_loss = d.train_loss(&loader)}                      // logits computed once
#pragma once
#include <functional>

#include "loom/data/dataloader.h"
#include "loom/nn/loss.h"
#include "loom/nn/module.h"

namespace loom::train {

using TrainLossFn = std::function<Tensor(const Tensor& output, const data::Batch& batch)>;

class Distiller {
 public:
  // teacher_input maps the student's inputs to the teacher's (another input normalisation, say); default: as is.
  Distiller(nn::Module& teacher, DistillationOptions o, std::function<Tensor(const Tensor&)> teacher_input = nullptr);

  // The teacher's logits of x, in eval mode without a graph (the teacher's mode is restored after).
  Tensor teacher_logits(const Tensor& x);
  // distillation_loss(student_logits, teacher_logits(x), y): one step's loss, for a hand-written loop.
  Tensor loss(const Tensor& student_logits, const Tensor& x, const Tensor& y);

  // Computes the teacher's logits of every sample of `ds` once, in batches of batch_size, so training looks
  // them up by sample index instead of running the teacher at each step. Right only while `ds` gives the same
  // inputs every epoch: train_loss(loader) re-runs the teacher on the first batch of each epoch and throws if
  // the cache no longer matches (a random transform of the inputs).
  void cache(const data::Dataset& ds, int64_t batch_size = 256);
  bool cached() const { return cache_.defined(); }

  // A FitOptions::train_loss. With a cache, `loader` (the one fit() runs) gives each batch's sample indices;
  // without one the teacher runs on every batch and `loader` may be null.
  TrainLossFn train_loss(const data::DataLoader* loader = nullptr);

  const DistillationOptions& options() const { return o_; }

 private:
  Tensor cached_logits(const data::DataLoader& loader, const data::Batch& b);

  nn::Module& teacher_;
  DistillationOptions o_;
  std::function<Tensor(const Tensor&)> input_;
  Tensor cache_;                  // (samples, classes) when cached
  int64_t checked_epoch_ = -1;    // the last epoch whose first batch was compared with the teacher
};

}  // namespace loom::train
