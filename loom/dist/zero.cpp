// ZeRO-1: flatten, reduce-scatter, update one shard, all-gather.
#include "loom/dist/zero.h"

#include <cmath>

#include "loom/autograd/grad_mode.h"
#include "loom/core/error.h"

namespace loom::dist {

ZeroRedundancyOptimizer::ZeroRedundancyOptimizer(std::vector<Tensor> params, CommPtr comm,
                                                 const OptimizerFactory& make, ZeroOptions options)
    : comm_(std::move(comm)), opts_(options) {
  LOOM_CHECK(comm_ != nullptr, "ZeroRedundancyOptimizer: the communicator is null (use dist::init())");
  LOOM_CHECK(make != nullptr, "ZeroRedundancyOptimizer: the optimizer factory is empty");
  LOOM_CHECK(!params.empty(), "ZeroRedundancyOptimizer: got an empty parameter list");
  LOOM_CHECK(opts_.max_grad_norm >= 0, "ZeroRedundancyOptimizer: max_grad_norm must be >= 0");
  check_new_params(params);
  params_ = std::move(params);
  const DType dt = params_[0].dtype();
  for (const auto& p : params_) {
    LOOM_CHECK(p.dtype() == dt, "ZeroRedundancyOptimizer: all parameters must share one dtype (", dt, " and ",
               p.dtype(), " found); the flat shard holds one");
    LOOM_CHECK(p.is_contiguous(), "ZeroRedundancyOptimizer: a parameter of shape ", p.shape(), " is not contiguous");
    total_ += p.numel();
  }
  const int64_t w = comm_->world_size();
  shard_ = (total_ + w - 1) / w;
  flat_grad_ = make_tensor({shard_ * w}, dt);
  flat_grad_.zero_();
  // This rank's slice of the flat parameters, as a leaf the wrapped optimizer owns.
  Tensor flat = make_tensor({shard_ * w}, dt);
  flat.zero_();
  int64_t off = 0;
  for (const auto& p : params_) {
    flat.narrow(0, off, p.numel()).copy_(p.detach().reshape({p.numel()}));
    off += p.numel();
  }
  shard_param_ = flat.narrow(0, comm_->rank() * shard_, shard_).clone();
  shard_param_.requires_grad_(true);
  inner_ = make({shard_param_});
  LOOM_CHECK(inner_ != nullptr, "ZeroRedundancyOptimizer: the factory returned no optimizer");
}

const std::vector<Tensor>& ZeroRedundancyOptimizer::params(size_t group) const {
  LOOM_CHECK(group == 0, "ZeroRedundancyOptimizer: param group ", group, " does not exist (1 group)");
  return params_;
}

void ZeroRedundancyOptimizer::set_group_options(size_t group, const std::map<std::string, double>& values) {
  auto it = values.find("lr");
  LOOM_CHECK(it != values.end(), "ZeroRedundancyOptimizer: load_state_dict: no lr for group ", group);
  inner_->set_lr(it->second, group);
}

void ZeroRedundancyOptimizer::step() {
  NoGradGuard g;
  const int64_t r = comm_->rank();
  // 1. The flat gradient (zeros where a parameter has none, and in the padding).
  int64_t off = 0;
  for (const auto& p : params_) {
    Tensor dst = flat_grad_.narrow(0, off, p.numel());
    Tensor grad = p.grad();
    if (grad.defined()) dst.copy_(grad.reshape({p.numel()}));
    else dst.zero_();
    off += p.numel();
  }
  // 2. This rank's shard of the averaged gradient.
  Tensor shard_grad = opts_.grads_reduced ? flat_grad_.narrow(0, r * shard_, shard_).clone()
                                          : comm_->reduce_scatter(flat_grad_, ReduceOp::Avg);
  if (opts_.max_grad_norm > 0) {
    Tensor sq = (shard_grad * shard_grad).sum().to(DType::f64).reshape({1});
    comm_->all_reduce(sq, ReduceOp::Sum);
    last_norm_ = std::sqrt(sq.item());
    const double coef = opts_.max_grad_norm / (last_norm_ + 1e-6);  // torch.nn.utils.clip_grad_norm_'s rule
    if (coef < 1) shard_grad.mul_(coef);
  }
  // 3. The shard's update, on the parameters as they are now (the user may have changed them).
  off = 0;
  for (const auto& p : params_) {
    flat_grad_.narrow(0, off, p.numel()).copy_(p.detach().reshape({p.numel()}));
    off += p.numel();
  }
  shard_param_.detach().copy_(flat_grad_.narrow(0, r * shard_, shard_));
  shard_param_.set_grad(shard_grad);
  inner_->step();
  // 4. Every rank gets every updated shard.
  Tensor all = comm_->all_gather(shard_param_.detach());
  off = 0;
  for (const auto& p : params_) {
    Tensor(p).detach().reshape({p.numel()}).copy_(all.narrow(0, off, p.numel()));
    off += p.numel();
  }
}

}  // namespace loom::dist
