// Federated averaging (McMahan et al. 2017): each round a fraction C of the K clients trains the global model
// on its own data for E epochs of batch B, and the server averages the results weighted by data size.
// FedSGD is the special case E = 1, B = all (one full-batch gradient step per round). Options add secure
// aggregation (pairwise masks) and client-level DP (each update clipped to norm S, Gaussian noise σS on the sum).
//   privacy::FedAvg fed(*model, train_set, privacy::partition_shards(labels, 100, 2, g), {.local_epochs = 5});
//   for (int r = 0; r < 50; ++r) fed.round();          // the model now holds the global weights
// With a communicator (MPI), the selected clients are dealt round-robin to the ranks and their weighted
// updates summed by all_reduce; every rank selects the same clients and ends each round with the same model.
#pragma once
#include <cstdint>
#include <memory>
#include <vector>

#include "loom/core/generator.h"
#include "loom/data/dataset.h"
#include "loom/dist/comm.h"
#include "loom/nn/module.h"
#include "loom/privacy/partition.h"
#include "loom/privacy/secure_agg.h"

namespace loom::privacy {

struct FedAvgOptions {
  double fraction = 0.1;         // C: fraction of clients per round (at least one)
  int64_t local_epochs = 5;      // E
  int64_t local_batch = 10;      // B; 0 = the client's whole data as one batch
  double lr = 0.05;              // local SGD learning rate
  bool secure_aggregation = false;
  double client_clip = 0;        // > 0: clip each client's update to this L2 norm (client-level DP)
  double client_noise = 0;       // σ: noise std σ·client_clip added to the sum of updates
  uint64_t seed = 0;
};

struct RoundStats {
  int64_t round = 0;
  std::vector<int64_t> clients;  // selected this round
  double train_loss = 0;         // mean local loss over the round's local steps
  int64_t bytes_down = 0, bytes_up = 0;  // model sent to the clients, updates sent back (f32; i64 when masked)
};

class FedAvg {
 public:
  FedAvg(nn::Module& model, data::DatasetPtr train, Partition clients, FedAvgOptions o, dist::CommPtr comm = nullptr);
  RoundStats round();
  int64_t rounds_done() const { return round_; }
  int64_t bytes_total() const { return bytes_; }
  const Partition& clients() const { return parts_; }
  // The weighted average of the selected clients' updates of the last round, before it was applied.
  const std::vector<Tensor>& last_update() const { return last_update_; }

 private:
  // Trains the model (holding the global weights) on one client's data; returns the summed loss and steps.
  std::pair<double, int64_t> local_train(int64_t client, int64_t round);

  nn::Module& model_;
  data::DatasetPtr train_;
  Partition parts_;
  FedAvgOptions o_;
  dist::CommPtr comm_;
  Generator gen_;
  std::unique_ptr<SecureAggregation> secure_;
  std::vector<Tensor> params_, last_update_;
  int64_t round_ = 0, bytes_ = 0;
};

}  // namespace loom::privacy
