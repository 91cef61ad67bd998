// `loom train`'s spine: the options every task shares (declared once), the task registry keyed by --model, and
// the pieces every task assembles from the options: the optimizer, the LR scheduler, the resume check, say().
//   TrainConfig c;  c.optimizer = "sgd";  c.lr = 0.1;  c.momentum = 0.9;
//   auto opt = make_optimizer(c, model->parameters());
//   Schedule s = make_schedule(c, *opt, /*total_steps=*/4690);
// Adding a task: docs/ARCHITECTURE.md, "How to add a training task".
#pragma once
#include <functional>
#include <map>
#include <memory>
#include <set>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "args.h"
#include "data_spec.h"
#include "loom/optim/optim.h"
#include "loom/train/callbacks.h"
#include "loom/text/tokenizer.h"
#include "loom/train/distill.h"

namespace loom::cli {

struct TrainConfig {
  // ---- the common options (declare_common_options): every task reads these
  std::string model, data = "fashion-mnist", optimizer = "adam", scheduler = "none", out;
  std::string init;  // --init DIR: start from that run's weights (a pruned run keeps its masks)
  std::string device = "cpu";  // --device: cpu, cuda, cuda:N (checked before any data is read)
  int64_t epochs = 0, steps = 0, batch_size = 64, threads = 0, seed = 0, checkpoint_every = 200, log_every = 0;
  double lr = 0, momentum = 0, weight_decay = 0, clip_grad_norm = 0;
  bool resume = false, json = false, nesterov = false;
  // ---- options of the classifier / regression tasks (cmd_train.cpp), also used by seq2seq and DP-SGD
  std::string target, progress = "auto";
  int64_t workers = 0, image_size = 32, train_samples = 0, test_samples = 0;
  int64_t step_size = 1, early_stopping = 0, patience = 2;
  double gamma = 0, val_split = 0;
  bool no_normalize = false;
  bool distributed = false;  // data-parallel over MPI ranks (mpirun -np N loom train ... --distributed)
  bool zero = false;         // with distributed: ZeRO-1, the optimizer state sharded over the ranks
};

// ---------------------------------------------------------------- the task registry

// One kind of training: its own options and its run. A fresh object per command line; the options it declares
// bind to its members (or to TrainConfig's task fields).
class TrainTask {
 public:
  virtual ~TrainTask() = default;
  // Before parsing: this task's defaults for the common options (--batch-size, --steps, --data, ...).
  virtual void defaults(TrainConfig& c) const { (void)c; }
  // The task's own options.
  virtual void declare(Args& a, TrainConfig& c) = 0;
  // After parsing: defaults that depend on other options (--lr on the optimizer) and the task's checks
  // (UsageError naming the option).
  virtual void finish(const Args& a, TrainConfig& c) = 0;
  virtual int run(const TrainConfig& c) = 0;
};

struct TrainTaskInfo {
  std::string name;                     // "language model"
  std::vector<std::string> models;      // the --model values that choose it
  std::string description;              // one line for --help
  std::string defaults_help;            // its defaults of the common options, for --help
  std::vector<std::string> schedulers;  // the --scheduler values it supports
  // Common options that do not apply to this task, with why; giving one is a usage error.
  std::map<std::string, std::string> not_applicable;
  std::function<std::unique_ptr<TrainTask>()> make;
};

// Every task, in --help order (cmd_train.cpp).
const std::vector<TrainTaskInfo>& train_tasks();
// The factories, one per task file.
std::unique_ptr<TrainTask> make_supervised_task(bool regression);  // cmd_train.cpp
std::unique_ptr<TrainTask> make_lm_task();                         // cmd_train_lm.cpp
std::unique_ptr<TrainTask> make_seq2seq_task();                    // cmd_train_seq2seq.cpp

// DP-SGD (cmd_train_dp.cpp): a variant of the classifier task, chosen by any --dp-* option.
struct DpOptions {
  double noise = -1, clip = 1.0, delta = 1e-5, target_epsilon = 0;
  bool loop = false;
};
void declare_dp_options(Args& a, DpOptions& d);
bool dp_requested(const Args& a);
// Checks and defaults after parsing (the classifier options DP-SGD does not take are refused).
void finish_dp(const Args& a, TrainConfig& c, DpOptions& d);
int train_dp(const TrainConfig& c, const DpOptions& d);

// After parsing, for every task: options that do not apply, the scheduler, --epochs/--steps, the task's own
// finish(), --momentum/--nesterov. Throws UsageError naming the option. (loom train, loom distill)
void finish_options(const Args& a, TrainConfig& c, const TrainTaskInfo& info, TrainTask& task);

// The common options, declared once for every task.
void declare_common_options(Args& a, TrainConfig& c);
// The whole `loom train --help`: the common options once, then each task's own options.
std::string train_help();

// ---------------------------------------------------------------- shared pieces

// Prints one event: JSON with --json, else the text (nothing for empty text); nothing at all when quiet
// (ranks other than 0 of a --distributed run).
struct Say {
  bool json = false, quiet = false;
  void operator()(const nlohmann::json& event, const std::string& text) const;
};

// The classifier / regression run (cmd_train.cpp). `ext` is what loom distill (cmd_distill.cpp) adds to it: the
// training loss (teacher against student), made once the data, the student and the training loader exist, and
// its options, recorded in config.json and the checkpoints (so --resume compares them like the others).
struct SupervisedExtension {
  nlohmann::json config;
  // train_set is what train_loader batches: d.train, or its part left by --val-split.
  std::function<train::TrainLossFn(const LoadedData& d, const data::Dataset& train_set,
                                   const data::DataLoader& train_loader, const Say& say)>
      make_train_loss;
};
int run_supervised(const TrainConfig& c, const SupervisedExtension* ext = nullptr);

// The same for the language-model task (cmd_train_lm.cpp): the training loss, made once the student's tokenizer
// exists (context: the student's --context), and its options, recorded with the run's (loom.lm_run).
struct LMExtension {
  nlohmann::json config;
  std::function<train::TrainLossFn(const text::Tokenizer& tok, int64_t context, const Say& say)> make_train_loss;
};
std::unique_ptr<TrainTask> make_lm_task(const LMExtension& ext);  // loom distill's; `ext` must outlive the task

struct OptimizerRule {
  // adamw: decay only parameters with 2+ dims (matrices, embeddings), not biases or norm weights (nanoGPT's rule;
  // the language models use it).
  bool adamw_decay_matrices_only = false;
};
std::unique_ptr<optim::Optimizer> make_optimizer(const TrainConfig& c, const std::vector<Tensor>& params,
                                                 OptimizerRule rule = {});

// A scheduler and how it is stepped: an LRScheduler (per step or per epoch) or ReduceLROnPlateau.
struct Schedule {
  std::unique_ptr<optim::LRScheduler> scheduler;
  train::Interval interval = train::Interval::Epoch;
  std::unique_ptr<optim::ReduceLROnPlateau> plateau;
};
Schedule make_schedule(const TrainConfig& c, optim::Optimizer& opt, int64_t total_steps);

// The classifier / regression hyper-parameters and data choices, as written to config.json and stored in
// checkpoints ("loom.config").
nlohmann::json config_json(const TrainConfig& c);

// ---------------------------------------------------------------- resuming

// The recorded options a resumed run may change, and how each is applied (documented in --help and
// docs/ARCHITECTURE.md); every other recorded option must equal the checkpoint's.
const std::map<std::string, std::string>& resume_may_change();

struct ResumeRecord {
  std::vector<std::string> order;                 // keys compared first, in this order (the rest follow sorted)
  std::map<std::string, nlohmann::json> absent;   // what a key a record omits means (e.g. clip_grad_norm: 0)
  std::set<std::string> skip_if_missing;          // keys older checkpoints lack: not compared when missing
  std::map<std::string, std::string> flags;       // key -> option name where it is not "--" + key with '-'
  std::map<std::string, std::string> explain;     // key -> why it matters, where the option name does not say
};

// Compares a checkpoint's recorded options with this run's. The first option that differs and may not change
// throws loom::Error naming the option, the saved and the new value and the fix. Options that may change and
// differ are returned as notes ("--threads: 2 in the checkpoint's run, 1 now (applied)") for the task to print.
std::vector<std::string> check_resume(const nlohmann::json& saved, const nlohmann::json& now, const std::string& ckpt,
                                      const ResumeRecord& record);

// --steps / --epochs are totals for the run: resuming a checkpoint already there would train nothing and report the
// old model as if trained now. Throws UsageError naming the option.
void check_resume_position(const TrainConfig& c, int64_t step, int64_t epoch);

}  // namespace loom::cli
