// The pieces `loom train` assembles from its options: the optimizer, the LR scheduler and the config record.
//   TrainConfig c;  c.optimizer = "sgd";  c.lr = 0.1;  c.momentum = 0.9;
//   auto opt = make_optimizer(c, model->parameters());
//   Schedule s = make_schedule(c, *opt, /*total_steps=*/4690);
#pragma once
#include <memory>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "loom/optim/optim.h"
#include "loom/train/callbacks.h"

namespace loom::cli {

struct TrainConfig {
  std::string model, data = "fashion-mnist", target, optimizer = "adam", scheduler = "none", out, progress = "auto";
  int64_t epochs = 0, steps = 0, batch_size = 64, threads = 0, seed = 0, workers = 0;
  int64_t checkpoint_every = 200, image_size = 32, train_samples = 0, test_samples = 0, log_every = 0;
  int64_t step_size = 1, early_stopping = 0, patience = 2;
  double lr = 0, momentum = 0, weight_decay = 0, gamma = 0, val_split = 0, clip_grad_norm = 0;
  bool resume = false, json = false, nesterov = false, no_normalize = false;
  bool distributed = false;  // data-parallel over MPI ranks (mpirun -np N loom train ... --distributed)
  bool zero = false;         // with distributed: ZeRO-1, the optimizer state sharded over the ranks
};

std::unique_ptr<optim::Optimizer> make_optimizer(const TrainConfig& c, const std::vector<Tensor>& params);

// A scheduler and how it is stepped: an LRScheduler (per step or per epoch) or ReduceLROnPlateau.
struct Schedule {
  std::unique_ptr<optim::LRScheduler> scheduler;
  train::Interval interval = train::Interval::Epoch;
  std::unique_ptr<optim::ReduceLROnPlateau> plateau;
};
Schedule make_schedule(const TrainConfig& c, optim::Optimizer& opt, int64_t total_steps);

// The hyper-parameters and data choices, as written to config.json and stored in checkpoints.
nlohmann::json config_json(const TrainConfig& c);
// Throws loom::Error when a checkpoint's config differs from this run in what resuming cannot change.
void check_resumable(const nlohmann::json& saved, const nlohmann::json& now, const std::string& path);

}  // namespace loom::cli
