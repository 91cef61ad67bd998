// Data-parallel training: every rank holds the whole model, trains on its shard of each batch, and the
// gradients are averaged over ranks before the optimizer step, so all ranks stay identical.
//   auto comm = dist::init();
//   dist::DistributedDataParallel ddp(*model, comm);         // rank 0's weights and buffers go to all ranks
//   for (auto& b : loader) { ddp.before_forward(); cross_entropy((*model)(b.data), b.target).backward();
//                            ddp.synchronize(); opt.step(); opt.zero_grad(true); }
// Gradients are packed into buckets (parameters in reverse registration order, which is about the order
// backward produces them); a bucket's all-reduce starts, non-blocking, from the post-accumulate hook of its
// last gradient, so communication overlaps the rest of backward. Buckets start in index order on every
// rank (MPI needs the same collective order everywhere). synchronize() waits for all of them.
#pragma once
#include <memory>
#include <vector>

#include "loom/dist/comm.h"
#include "loom/nn/module.h"

namespace loom::dist {

// What happens to buffers (BatchNorm running statistics) between ranks.
enum class BufferSync {
  Broadcast,  // rank 0's buffers overwrite the others before every forward (PyTorch DDP's default)
  Average,    // floating buffers are averaged over ranks before every forward (integer ones broadcast)
  None,       // each rank keeps its own
};

struct DDPOptions {
  // Bucket size. Small buckets start sooner (more overlap), large ones cost fewer messages. PyTorch's 25 MB
  // suits GPU models; CPU models are smaller (the W2 CNN's gradients are 0.5 MB: 3 buckets at 0.25 MB).
  double bucket_cap_mb = 0.25;
  BufferSync buffers = BufferSync::Broadcast;
  bool reduce_gradients = true;  // false: only broadcast at start and sync buffers (ZeRO-1 reduces itself)
};

class DistributedDataParallel {
 public:
  DistributedDataParallel(nn::Module& model, CommPtr comm, DDPOptions options = {});
  ~DistributedDataParallel();
  DistributedDataParallel(const DistributedDataParallel&) = delete;
  DistributedDataParallel& operator=(const DistributedDataParallel&) = delete;

  // Call before each forward: syncs buffers as DDPOptions::buffers says.
  void before_forward();
  // Call after backward and before the optimizer step: waits until every bucket is reduced and the
  // averaged gradients are in .grad. Parameters that got no gradient on this rank count as zeros (their
  // .grad is set to zeros so every rank joins the same collectives). Does nothing inside no_sync.
  void synchronize();

  // Gradient accumulation: while the guard lives, backward only accumulates locally; the first backward
  // after it reduces the sum of all the accumulated gradients (as torch's `with ddp.no_sync():`).
  class NoSyncGuard {
   public:
    explicit NoSyncGuard(DistributedDataParallel& d) : d_(d), prev_(d.sync_enabled_) { d_.sync_enabled_ = false; }
    ~NoSyncGuard() { d_.sync_enabled_ = prev_; }
    NoSyncGuard(const NoSyncGuard&) = delete;
    NoSyncGuard& operator=(const NoSyncGuard&) = delete;

   private:
    DistributedDataParallel& d_;
    bool prev_;
  };
  NoSyncGuard no_sync() { return NoSyncGuard(*this); }

  nn::Module& module() const { return model_; }
  const CommPtr& comm() const { return comm_; }
  int64_t num_buckets() const { return int64_t(buckets_.size()); }
  // Buckets whose all-reduce started before the step's last gradient arrived (overlap with backward),
  // counted over the object's life.
  int64_t early_launches() const { return early_launches_; }
  // Parameter indices (into module().parameters()) of each bucket, in launch order.
  std::vector<std::vector<int64_t>> bucket_layout() const;

 private:
  struct Bucket {
    std::vector<int64_t> params;  // indices into params_
    std::vector<int64_t> offsets;
    Tensor flat;
    int64_t pending = 0;
    WorkPtr work;
  };
  struct HookState;

  void begin_step();
  void on_grad_ready(int64_t param);
  void launch_ready_buckets();
  void launch(Bucket& b);
  void finish_step();

  nn::Module& model_;
  CommPtr comm_;
  DDPOptions opts_;
  std::vector<Tensor> params_;
  std::vector<std::shared_ptr<autograd::Node>> accumulators_;  // kept alive so their hooks persist
  std::vector<int64_t> bucket_of_;
  std::vector<Bucket> buckets_;
  std::vector<bool> ready_;
  std::shared_ptr<HookState> hook_state_;
  int64_t next_launch_ = 0, num_ready_ = 0, early_launches_ = 0;
  bool in_step_ = false, finished_ = false, sync_enabled_ = true;
};

// Broadcasts every parameter and buffer of `model` from `root` (what DDP does at construction).
void broadcast_module(nn::Module& model, Communicator& comm, int root = 0);

}  // namespace loom::dist
