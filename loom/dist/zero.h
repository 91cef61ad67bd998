// ZeRO stage 1: the optimizer state is sharded over ranks. The parameters are seen as one flat vector cut
// into world_size equal shards; rank r keeps optimizer state (Adam's moments, ...) for shard r only.
//   dist::DistributedDataParallel ddp(*model, comm, {.reduce_gradients = false});  // ZeRO reduces itself
//   dist::ZeroRedundancyOptimizer opt(model->parameters(), comm, [](std::vector<Tensor> p) {
//     return std::make_unique<optim::Adam>(std::move(p), optim::AdamOptions{.lr = 1e-3}); });
// step(): reduce_scatter(avg) of the flat gradient gives each rank its shard's averaged gradient; the
// wrapped optimizer updates that shard; all_gather brings every rank the whole updated vector. Elementwise
// optimizers (SGD, Adam, AdamW, RMSprop) give the same weights as unsharded DDP. With
// ZeroOptions::grads_reduced (after an all-reducing DDP, as torch's ZeroRedundancyOptimizer is used) the
// gradient is already averaged and step() only slices it.
// Limits: state_dict() holds only the learning rate (a checkpoint does not carry the sharded moments, so
// `loom train --zero` cannot --resume); clip_grad_norm_ on params() before step() would see unreduced
// gradients: use ZeroOptions::max_grad_norm, which clips with the global norm of the averaged gradient.
#pragma once
#include <functional>
#include <memory>

#include "loom/dist/comm.h"
#include "loom/optim/optimizer.h"

namespace loom::dist {

struct ZeroOptions {
  bool grads_reduced = false;  // true: .grad already holds the average over ranks (DDP reduced it)
  double max_grad_norm = 0;    // > 0: clip the averaged gradient's global 2-norm to this before the update
};

using OptimizerFactory = std::function<std::unique_ptr<optim::Optimizer>(std::vector<Tensor> params)>;

class ZeroRedundancyOptimizer : public optim::Optimizer {
 public:
  ZeroRedundancyOptimizer(std::vector<Tensor> params, CommPtr comm, const OptimizerFactory& make,
                          ZeroOptions options = {});

  void step() override;
  const char* name() const override { return "ZeroRedundancyOptimizer"; }
  size_t num_param_groups() const override { return 1; }
  const std::vector<Tensor>& params(size_t group) const override;
  double get_lr(size_t group = 0) const override { return inner_->get_lr(group); }
  void set_lr(double lr, size_t group) override { inner_->set_lr(lr, group); }
  using Optimizer::set_lr;
  bool has_momentum() const override { return inner_->has_momentum(); }
  double get_momentum(size_t group) const override { return inner_->get_momentum(group); }
  void set_momentum(double m, size_t group) override { inner_->set_momentum(m, group); }

  // The optimizer that updates this rank's shard (its state is the shard's state).
  optim::Optimizer& local_optimizer() const { return *inner_; }
  int64_t shard_size() const { return shard_; }    // elements per rank (the flat vector padded to world * shard)
  int64_t total_size() const { return total_; }    // elements of all parameters
  double last_grad_norm() const { return last_norm_; }  // before clipping, when max_grad_norm > 0

 protected:
  std::vector<std::string> buffer_names() const override { return {}; }
  std::map<std::string, double> group_options(size_t group) const override { return {{"lr", get_lr(group)}}; }
  void set_group_options(size_t group, const std::map<std::string, double>& values) override;

 private:
  std::vector<Tensor> params_;
  CommPtr comm_;
  ZeroOptions opts_;
  int64_t total_ = 0, shard_ = 0;
  Tensor flat_grad_, shard_param_;
  std::unique_ptr<optim::Optimizer> inner_;
  double last_norm_ = 0;
};

}  // namespace loom::dist
