// The gradient reducer behind DistributedDataParallel: buckets, the post-accumulate hooks that start each
// bucket's all-reduce during backward, and the wait at the end.
#include "loom/dist/ddp.h"

#include <algorithm>

#include "loom/autograd/function.h"
#include "loom/autograd/grad_mode.h"
#include "loom/core/error.h"

namespace loom::dist {

// The hooks outlive nothing: they hold this weakly, so a hook left on an accumulator after the DDP object
// is gone does nothing.
struct DistributedDataParallel::HookState {
  DistributedDataParallel* ddp;
};

void broadcast_module(nn::Module& model, Communicator& comm, int root) {
  if (comm.world_size() == 1) return;
  NoGradGuard g;
  auto send = [&](const Tensor& t) {
    LOOM_CHECK(t.is_contiguous(), "broadcast_module: a parameter or buffer of shape ", t.shape(),
               " is not contiguous");
    Tensor h = t;
    comm.broadcast(h, root);
  };
  for (const auto& p : model.parameters()) send(p);
  for (const auto& b : model.buffers()) send(b);
}

DistributedDataParallel::DistributedDataParallel(nn::Module& model, CommPtr comm, DDPOptions options)
    : model_(model), comm_(std::move(comm)), opts_(options) {
  LOOM_CHECK(comm_ != nullptr, "DistributedDataParallel: the communicator is null (use dist::init())");
  LOOM_CHECK(opts_.bucket_cap_mb > 0, "DistributedDataParallel: bucket_cap_mb must be > 0, got ",
             opts_.bucket_cap_mb);
  broadcast_module(model_, *comm_);
  for (const auto& p : model_.parameters())
    if (p.requires_grad()) params_.push_back(p);
  if (!opts_.reduce_gradients || comm_->world_size() == 1) return;

  // Buckets in reverse registration order: the last layers' gradients come first in backward. A bucket
  // holds one dtype and at most bucket_cap_mb (a larger parameter gets a bucket of its own).
  const double cap = opts_.bucket_cap_mb * 1024 * 1024;
  bucket_of_.assign(params_.size(), -1);
  double bytes = 0;
  for (int64_t i = int64_t(params_.size()) - 1; i >= 0; --i) {
    const Tensor& p = params_[size_t(i)];
    LOOM_CHECK(p.is_contiguous(), "DistributedDataParallel: parameter ", i, " of shape ", p.shape(),
               " is not contiguous");
    const double pb = double(p.numel()) * double(itemsize(p.dtype()));
    const bool fits = !buckets_.empty() && bytes + pb <= cap &&
                      params_[size_t(buckets_.back().params.front())].dtype() == p.dtype();
    if (!fits) {
      buckets_.emplace_back();
      bytes = 0;
    }
    Bucket& b = buckets_.back();
    b.offsets.push_back(b.params.empty() ? 0 : b.offsets.back() + params_[size_t(b.params.back())].numel());
    b.params.push_back(i);
    bucket_of_[size_t(i)] = int64_t(buckets_.size()) - 1;
    bytes += pb;
  }
  for (auto& b : buckets_) {
    const Tensor& last = params_[size_t(b.params.back())];
    b.flat = make_tensor({b.offsets.back() + last.numel()}, last.dtype());
  }
  ready_.assign(params_.size(), false);

  hook_state_ = std::make_shared<HookState>(HookState{this});
  std::weak_ptr<HookState> weak = hook_state_;
  for (size_t i = 0; i < params_.size(); ++i) {
    autograd::Edge e = autograd::gradient_edge(params_[i]);
    auto* acc = dynamic_cast<autograd::AccumulateGrad*>(e.fn.get());
    LOOM_CHECK(acc != nullptr, "DistributedDataParallel: parameter ", i, " is not a leaf tensor");
    acc->post_hooks.push_back([weak, i](const Tensor&) {
      if (auto s = weak.lock()) s->ddp->on_grad_ready(int64_t(i));
    });
    accumulators_.push_back(e.fn);
  }
}

DistributedDataParallel::~DistributedDataParallel() {
  // Never leave a collective writing into a bucket that is about to be freed.
  for (auto& b : buckets_)
    if (b.work) b.work->wait();
}

std::vector<std::vector<int64_t>> DistributedDataParallel::bucket_layout() const {
  std::vector<std::vector<int64_t>> out;
  for (const auto& b : buckets_) out.push_back(b.params);
  return out;
}

void DistributedDataParallel::before_forward() {
  if (comm_->world_size() == 1 || opts_.buffers == BufferSync::None) return;
  NoGradGuard g;
  for (auto b : model_.buffers()) {
    if (opts_.buffers == BufferSync::Average && is_floating(b.dtype()))
      comm_->all_reduce(b, ReduceOp::Avg);
    else
      comm_->broadcast(b, 0);
  }
}

void DistributedDataParallel::begin_step() {
  in_step_ = true;
  finished_ = false;
  num_ready_ = 0;
  next_launch_ = 0;
  std::fill(ready_.begin(), ready_.end(), false);
  for (auto& b : buckets_) b.pending = int64_t(b.params.size());
}

void DistributedDataParallel::on_grad_ready(int64_t i) {
  if (!sync_enabled_ || buckets_.empty()) return;
  if (!in_step_) begin_step();
  if (ready_[size_t(i)]) return;
  ready_[size_t(i)] = true;
  ++num_ready_;
  --buckets_[size_t(bucket_of_[size_t(i)])].pending;
  launch_ready_buckets();
  // Open MPI moves non-blocking collectives forward only inside MPI calls: poke the ones in flight.
  for (int64_t k = 0; k < next_launch_; ++k)
    if (buckets_[size_t(k)].work) buckets_[size_t(k)].work->test();
  if (num_ready_ == int64_t(params_.size())) finish_step();
}

void DistributedDataParallel::launch_ready_buckets() {
  while (next_launch_ < int64_t(buckets_.size()) && buckets_[size_t(next_launch_)].pending == 0) {
    if (num_ready_ < int64_t(params_.size())) ++early_launches_;
    launch(buckets_[size_t(next_launch_++)]);
  }
}

void DistributedDataParallel::launch(Bucket& b) {
  NoGradGuard g;
  for (size_t k = 0; k < b.params.size(); ++k) {
    const Tensor& p = params_[size_t(b.params[k])];
    Tensor dst = b.flat.narrow(0, b.offsets[k], p.numel());
    Tensor grad = p.grad();
    if (grad.defined()) dst.copy_(grad.reshape({p.numel()}));
    else dst.zero_();
  }
  b.work = comm_->all_reduce_async(b.flat, ReduceOp::Avg);
}

void DistributedDataParallel::finish_step() {
  NoGradGuard g;
  for (auto& b : buckets_) {
    b.work->wait();
    b.work = nullptr;
    for (size_t k = 0; k < b.params.size(); ++k) {
      Tensor p = params_[size_t(b.params[k])];
      Tensor avg = b.flat.narrow(0, b.offsets[k], p.numel()).reshape(p.shape());
      Tensor grad = p.grad();
      if (grad.defined()) grad.copy_(avg);
      else p.set_grad(avg.clone());
    }
  }
  in_step_ = false;
  finished_ = true;
}

void DistributedDataParallel::synchronize() {
  if (!sync_enabled_ || buckets_.empty()) return;
  if (finished_) {  // every gradient arrived and was reduced inside backward
    finished_ = false;
    return;
  }
  if (!in_step_) begin_step();  // no gradient at all on this rank: it still joins with zeros
  // Parameters without a gradient this step count as zeros.
  for (size_t i = 0; i < params_.size(); ++i) {
    if (ready_[i]) continue;
    ready_[i] = true;
    ++num_ready_;
    --buckets_[size_t(bucket_of_[i])].pending;
  }
  launch_ready_buckets();
  finish_step();
  finished_ = false;
}

}  // namespace loom::dist
