// loom train: the task registry keyed by --model (classifier, regression, language model, seq2seq), the common
// options every task shares (train_setup.h), and the classifier/regression task: data + model + optimizer from
// the options, fit() with a run folder and checkpoints, then the test-set evaluation and a final summary.
#include <algorithm>
#include <chrono>
#include <filesystem>
#include <iostream>

#include "args.h"
#include "commands.h"
#include "data_spec.h"
#include "loom/backend/backend.h"
#include "loom/backend/cuda/cuda.h"
#include "loom/io/json_fields.h"
#include "loom/core/generator.h"
#include "loom/data/dataloader.h"
#include "loom/dist/dist.h"
#include "loom/nn/loss.h"
#include "loom/nn/repr.h"
#include "loom/runtime/classifier_run.h"
#include "loom/train/confusion_png.h"
#include "loom/train/train.h"
#include "loom/trust/manifest.h"
#include "model_file.h"
#include "train_setup.h"

namespace loom::cli {

namespace {

namespace fs = std::filesystem;
using json = nlohmann::json;

constexpr const char* kScheduleSteps = "schedule_steps";

// The classifier (mlp, lenet, cnn) and regression (linreg) tasks: fit() over a DataLoader with a run folder and
// checkpoints, then the test-set evaluation. DP-SGD (any --dp-* option) is a variant of the classifier task.
class SupervisedTask final : public TrainTask {
 public:
  explicit SupervisedTask(bool regression) : regression_(regression) {}

  void declare(Args& a, TrainConfig& c) override {
    if (regression_) a.option("--target", &c.target, "COL", "the CSV column to predict (required)");
    a.option("--step-size", &c.step_size, "N", "step: epochs between decays (default 1)", {.min = 1});
    a.option("--gamma", &c.gamma, "G", "step/exponential/plateau: decay factor (0.1, 0.9, 0.1)",
             {.min = 0, .max = 1, .exclusive_min = true});
    a.option("--patience", &c.patience, "N", "plateau: epochs without improvement before decaying (default 2)",
             {.min = 0});
    a.option("--early-stopping", &c.early_stopping, "N", "stop after N epochs without val_loss improvement",
             {.min = 1});
    a.flag("--distributed", &c.distributed,
           "data-parallel over the ranks of mpirun -np N (--batch-size is per rank; rank 0 prints and writes)");
    a.flag("--zero", &c.zero, "with --distributed: shard the optimizer state over the ranks (ZeRO-1)");
    if (!regression_)
      a.flag("--no-normalize", &c.no_normalize, "feed images in [0, 1] instead of normalising each channel");
    a.option("--workers", &c.workers, "N", "data loading threads (default 0: on the training thread)",
             {.min = 0, .max = 64});
    a.option("--val-split", &c.val_split, "F", "hold out this fraction of the training data for validation",
             {.min = 0, .max = 0.9});
    if (!regression_)
      a.option("--image-size", &c.image_size, "N", "imagefolder: resize images to NxN (default 32)",
               {.min = 8, .max = 1024});
    a.option("--train-samples", &c.train_samples, "N", "use only the first N training samples", {.min = 1});
    a.option("--test-samples", &c.test_samples, "N", "use only the first N test samples", {.min = 1});
    a.choice("--progress", &c.progress, {"auto", "bar", "lines", "none"},
             "progress display (default: bar on a terminal)");
    if (!regression_) declare_dp_options(a, dp_);
  }

  void finish(const Args& a, TrainConfig& c) override {
    if (!regression_ && dp_requested(a)) {
      if (!c.init.empty()) throw UsageError("--init: DP-SGD trains from scratch (its privacy accounting covers the "
                                            "whole training); leave out --init or the --dp-* options");
      dp_on_ = true;
      finish_dp(a, c, dp_);
      return;
    }
    if (!a.given("--lr")) c.lr = c.optimizer == "sgd" ? 0.01 : 1e-3;
    DataOptions d{.spec = c.data, .target = c.target};
    check_data_options(d);
    const bool csv = c.data.starts_with("csv:");
    if (regression_ && !csv) throw UsageError("--model linreg needs --data csv:FILE --target COL");
    if (!regression_ && csv) throw UsageError("--data csv: is for --model linreg (the others take images)");
    if (c.out.empty()) c.out = "runs/" + c.model + "-" + split_spec(c.data).first;
    if (c.zero && !c.distributed) throw UsageError("--zero needs --distributed");
    if (c.zero && c.resume)
      throw UsageError("--zero cannot --resume: checkpoints do not hold the sharded optimizer state");
  }

  int run(const TrainConfig& c) override { return dp_on_ ? train_dp(c, dp_) : run_supervised(c); }

 private:
  bool regression_;
  DpOptions dp_;
  bool dp_on_ = false;
};

// What the classifier/regression record ("loom.config") holds and how a resume compares it.
ResumeRecord supervised_record() {
  ResumeRecord r;
  r.order = {"model", "data", "target", "batch_size", "optimizer", "seed", "val_split", "train_samples", "image_size",
             "scheduler", "normalize", "lr", "momentum", "nesterov", "weight_decay", "step_size", "gamma", "patience",
             kScheduleSteps, "clip_grad_norm", "early_stopping_patience", "test_samples"};
  // config_json() leaves these out at their defaults.
  r.absent = {{"target", ""}, {"clip_grad_norm", 0.0}, {"early_stopping_patience", 0}, {"train_samples", 0},
              {"test_samples", 0}};
  r.skip_if_missing = {kScheduleSteps};  // recorded since the one training spine
  r.flags = {{"normalize", "--no-normalize"},
             {"early_stopping_patience", "--early-stopping"},
             {kScheduleSteps, "--epochs/--steps"}};
  r.explain = {{kScheduleSteps, "a total of that many steps, the length of its cosine/onecycle schedule"}};
  return r;
}

std::shared_ptr<data::DataLoader> loader(data::DatasetPtr ds, int64_t batch, bool shuffle, const TrainConfig& c) {
  if (!ds) return nullptr;
  return std::make_shared<data::DataLoader>(
      ds, data::LoaderOptions{
              .batch_size = batch, .shuffle = shuffle, .num_workers = int(c.workers), .seed = uint64_t(c.seed)});
}

std::string pct(double v) {
  char buf[32];
  std::snprintf(buf, sizeof buf, "%.2f%%", 100.0 * v);
  return buf;
}

// --init DIR: the run's model with its weights (and pruning masks, kept as weight_orig / weight_mask so the
// pruned entries stay zero), checked against what this training feeds it. `shape` takes the run's widths.
std::shared_ptr<nn::Sequential> init_model(const TrainConfig& c, models::ModelSpec& shape) {
  runtime::ClassifierRun r = runtime::load_classifier(c.init, "", /*keep_masks=*/true);
  if (r.name != c.model)
    throw UsageError("--init " + c.init + " holds a " + r.name + " model, not --model " + c.model);
  const models::ModelSpec& s = r.shape;
  if (s.channels != shape.channels || s.height != shape.height || s.width != shape.width ||
      s.features != shape.features || s.num_classes != shape.num_classes)
    throw UsageError("--init " + c.init + ": its model takes " +
                     (models::is_regression(r.name) ? std::to_string(s.features) + " features"
                                                    : std::to_string(s.channels) + "x" + std::to_string(s.height) +
                                                          "x" + std::to_string(s.width) + " images") +
                     " and predicts " + std::to_string(s.num_classes) + " classes, which --data " + c.data +
                     " does not match");
  shape.widths = s.widths;
  r.model->train();
  return r.model;
}

}  // namespace

int run_supervised(const TrainConfig& c, const SupervisedExtension* ext) {
  const auto wall0 = std::chrono::steady_clock::now();
  if (c.threads > 0) set_num_threads(int(c.threads));
  manual_seed(uint64_t(c.seed));

  DataOptions dopt{.spec = c.data,
                   .target = c.target,
                   .image_size = c.image_size,
                   .seed = uint64_t(c.seed),
                   .train_limit = c.train_samples,
                   .test_limit = c.test_samples,
                   .normalize = !c.no_normalize};
  LoadedData d = load_data(dopt);
  dopt.norm = d.norm;  // saved with the model so eval and predict feed it the same inputs
  data::DatasetPtr train_set = d.train, val_set = d.test;
  if (c.val_split > 0) {
    const int64_t n = train_set->size(), nv = std::max<int64_t>(1, int64_t(double(n) * c.val_split));
    LOOM_CHECK(n - nv >= 1, "--val-split ", c.val_split, " leaves no training samples out of ", n);
    Generator g(uint64_t(c.seed) + 1);
    auto parts = data::random_split(train_set, {n - nv, nv}, g);
    train_set = parts[0], val_set = parts[1];
  }
  auto train_loader = loader(train_set, c.batch_size, true, c);
  // --distributed: rank r takes perm[r::N] of each epoch's permutation (docs/distributed.md).
  dist::CommPtr comm = c.distributed ? dist::init(/*require_mpi=*/true) : nullptr;
  const int rank = comm ? comm->rank() : 0, world = comm ? comm->world_size() : 1;
  const Say say{.json = c.json, .quiet = rank != 0};  // ranks other than 0 of a --distributed run print nothing
  if (comm)
    train_loader = std::make_shared<data::DataLoader>(
        train_set, data::LoaderOptions{.batch_size = c.batch_size,
                                       .num_workers = int(c.workers),
                                       .sampler = std::make_shared<data::DistributedSampler>(
                                           train_set->size(), rank, world, uint64_t(c.seed))});
  auto val_loader = loader(val_set, 256, false, c);
  auto test_loader = c.val_split > 0 ? loader(d.test, 256, false, c) : val_loader;

  auto model = c.init.empty() ? models::make_model(c.model, d.shape) : init_model(c, d.shape);
  std::unique_ptr<dist::DistributedDataParallel> ddp;
  if (comm)  // rank 0's weights to all; with --zero the optimizer reduce-scatters the gradients itself
    ddp = std::make_unique<dist::DistributedDataParallel>(*model, comm, dist::DDPOptions{.reduce_gradients = !c.zero});
  std::unique_ptr<optim::Optimizer> opt;
  if (c.zero)
    opt = std::make_unique<dist::ZeroRedundancyOptimizer>(
        model->parameters(), comm, [&](std::vector<Tensor> p) { return make_optimizer(c, p); },
        dist::ZeroOptions{.max_grad_norm = c.clip_grad_norm});
  else
    opt = make_optimizer(c, model->parameters());
  const int64_t nb = train_loader->num_batches();
  const int64_t total_steps = c.steps > 0 ? c.steps : c.epochs * nb;
  Schedule sched = make_schedule(c, *opt, total_steps);

  const std::string ckpt_path = (fs::path(c.out) / train::kCheckpointFile).string();
  json cfg = config_json(c);
  if (ext) cfg.update(ext->config);  // loom distill's options: recorded, and compared on --resume
  // A cosine or onecycle schedule spans the planned steps: they are part of the recipe a resume must keep.
  if (c.scheduler == "cosine" || c.scheduler == "onecycle") cfg[kScheduleSteps] = total_steps;
  json cfg_full = cfg;
  cfg_full["input_shape"] = models::input_shape(c.model, d.shape, 1);
  cfg_full["num_parameters"] = model->num_parameters();
  cfg_full["train_samples_total"] = train_set->size();
  cfg_full["classes"] = d.classes;
  if (!d.norm.empty()) cfg_full["normalization"] = {{"mean", d.norm.mean}, {"std", d.norm.std}};
  bool resuming = false;
  std::vector<std::string> resume_notes;
  if (c.resume && fs::exists(ckpt_path)) {
    train::Checkpoint saved = train::load_checkpoint(ckpt_path);
    auto it = saved.metadata.find("loom.config");
    LOOM_CHECK(it != saved.metadata.end(), ckpt_path,
               ": the checkpoint has no loom.config entry (not made by loom train)");
    resume_notes = check_resume(io::parse_json(it->second, ckpt_path + " (loom.config)"), cfg, ckpt_path,
                                supervised_record());
    auto ws = saved.metadata.find("loom.world_size");
    const std::string saved_world = ws == saved.metadata.end() ? "1" : ws->second;
    LOOM_CHECK(saved_world == std::to_string(world), ckpt_path, ": the run was made with ", saved_world,
               " rank(s) and this one has ", world, "; resume with the same mpirun -np (the data order and "
               "per-rank batch depend on it)");
    resuming = true;
  } else if (c.resume) {
    say({{"event", "note"}, {"message", "no checkpoint in " + c.out + "; starting from scratch"}},
        "no checkpoint in " + c.out + "; starting from scratch");
  } else if (fs::exists(ckpt_path)) {
    say({{"event", "note"}, {"message", "replacing the previous run in " + c.out}},
        "note: replacing the previous run in " + c.out + " (--resume continues it instead)");
  }

  const io::Metadata meta = model_metadata(c.model, d.shape, d.classes, dopt);
  std::vector<train::CallbackPtr> callbacks;
  const bool regression = d.regression;
  if (sched.plateau) callbacks.push_back(std::make_shared<train::ReduceLROnPlateauStepper>(*sched.plateau, "val_loss"));
  if (c.early_stopping > 0)
    callbacks.push_back(std::make_shared<train::EarlyStopping>(
        train::EarlyStoppingOptions{.monitor = "val_loss", .patience = c.early_stopping - 1}));
  if (rank == 0) {  // every rank holds the same weights and position: rank 0 alone writes them
    callbacks.push_back(std::make_shared<train::RunFolder>(
        train::RunFolderOptions{.dir = c.out, .config_json = cfg_full.dump(2), .weights_metadata = meta}));
    callbacks.push_back(std::make_shared<train::ModelCheckpoint>(
        train::ModelCheckpointOptions{.path = ckpt_path, .every_steps = c.checkpoint_every}));
  }

  train::ProgressMode mode = c.json                  ? train::ProgressMode::Json
                             : c.progress == "bar"   ? train::ProgressMode::Bar
                             : c.progress == "lines" ? train::ProgressMode::Lines
                             : c.progress == "none"  ? train::ProgressMode::None
                                                     : train::ProgressMode::Auto;
  io::Metadata ckpt_meta = meta;
  ckpt_meta["loom.config"] = cfg.dump();
  ckpt_meta["loom.world_size"] = std::to_string(world);
  train::FitOptions fo{
      .epochs = c.epochs,
      .steps = c.steps,
      .optimizer = opt.get(),
      .loss = regression ? train::LossFn([](const Tensor& o, const Tensor& t) { return mse_loss(o, t); })
                         : train::LossFn(nullptr),
      .metrics = regression ? std::vector<std::string>{"mae", "r2"} : std::vector<std::string>{"accuracy"},
      .validation = val_loader.get(),
      .callbacks = callbacks,
      .scheduler = sched.scheduler.get(),
      .scheduler_interval = sched.interval,
      .clip_grad_norm = c.zero ? 0.0 : c.clip_grad_norm,  // ZeRO clips with the averaged gradient
      .progress = mode,
      .log_every = c.log_every,
      .out = nullptr,
      .terminate_on_nan = true,
      .resume_from = resuming ? ckpt_path : "",
      .generators = {},
      .checkpoint_metadata = ckpt_meta};
  if (ddp) {
    fo.before_forward = [&] { ddp->before_forward(); };
    fo.after_backward = [&] { ddp->synchronize(); };
    fo.world_size = world;
    if (rank != 0) fo.progress = train::ProgressMode::None;
  }
  if (ext) fo.train_loss = ext->make_train_loss(d, *train_set, *train_loader, say);
  train::Trainer trainer(*model, fo);

  std::ostringstream intro;
  intro << "training " << c.model << " (" << nn::group_digits(model->num_parameters()) << " parameters) on " << c.data
        << ": " << train_set->size() << " train / " << val_set->size() << (c.val_split > 0 ? " validation" : " test")
        << " samples; " << c.optimizer << " lr " << c.lr << ", batch " << c.batch_size << ", "
        << (c.steps > 0 ? std::to_string(c.steps) + " steps" : std::to_string(c.epochs) + " epochs") << " (" << nb
        << " steps/epoch), " << get_num_threads() << (get_num_threads() == 1 ? " thread" : " threads");
  json start = {{"event", "start"},
                {"model", c.model},
                {"data", c.data},
                {"parameters", model->num_parameters()},
                {"train_samples", train_set->size()},
                {"steps_per_epoch", nb},
                {"threads", get_num_threads()},
                {"out", c.out}};
  if (resuming) {
    check_resume_position(c, trainer.global_step(), trainer.epoch());
    intro << "\nresuming from " << ckpt_path << " at epoch " << trainer.epoch() + 1 << ", batch " << trainer.batch()
          << " (step " << trainer.global_step() << ")";
    start["resumed_at_step"] = trainer.global_step();
  }
  if (comm) {
    intro << "\ndata-parallel over " << world << " ranks (MPI): batch " << c.batch_size << " per rank, "
          << c.batch_size * world << " per step" << (c.zero ? ", optimizer state sharded (ZeRO-1)" : "");
    start["world_size"] = world;
  }
  say(start, intro.str());
  for (const auto& n : resume_notes) say({{"event", "note"}, {"message", n}}, "note: " + n);

  if (comm) comm->reset_comm_seconds();
  if (rank == 0) begin_run_folder(c.out);  // no stale manifest while training; a resumed encrypted run decrypted
  train::History h = trainer.fit(*train_loader);
  if (comm) {
    // The others wait for rank 0 to finish its writes; the test evaluation below is rank 0's alone.
    const double comm_s = comm->comm_seconds();
    comm->barrier();
    if (rank != 0) return 0;
    h.last["comm_ms_per_step"] = trainer.global_step() > 0 ? 1e3 * comm_s / double(trainer.global_step()) : 0.0;
  }

  // Without a validation split the per-epoch validation ran on the test set: reuse its last numbers.
  train::Logs test;
  if (test_loader == val_loader && h.last.count("val_loss")) {
    for (const auto& [k, v] : h.last)
      if (k.starts_with("val_")) test[k.substr(4)] = v;
  } else {
    test = train::evaluate(*model, *test_loader, {.loss = fo.loss, .metrics = fo.metrics});
  }
  // confusion.png beside curves.png: the test split's confusion matrix (docs/data-and-explanations.md).
  if (!regression)
    train::write_confusion_png((fs::path(c.out) / train::kConfusionFile).string(), *model, *test_loader, d.classes,
                               d.shape.num_classes);
  // Last of the run's files written: the manifest (SHA-256 of every file and tensor) that loom verify checks.
  finish_run_folder(c.out);  // + encryption at rest with --encrypt-key-file
  const double wall = std::chrono::duration<double>(std::chrono::steady_clock::now() - wall0).count();
  json done = {{"event", "done"},
               {"test_loss", test["loss"]},
               {"train_samples_per_s", h.train_samples_per_s},
               {"peak_rss_mb", peak_rss_mb()},
               {"epochs_completed", h.epochs.size()},
               {"steps", trainer.global_step()},
               {"seconds", wall},
               {"out", c.out}};
  for (const auto& [k, v] : test)
    if (k != "loss") done["test_" + k] = v;
  if (!h.stop_reason.empty()) done["stop_reason"] = h.stop_reason;
  if (comm) done["world_size"] = world, done["comm_ms_per_step"] = h.last["comm_ms_per_step"];
  std::ostringstream text;
  if (regression)
    text << "test loss (MSE) " << test["loss"] << "  MAE " << test["mae"] << "  R^2 " << test["r2"];
  else
    text << "test accuracy " << pct(test["accuracy"]) << "  (test loss " << test["loss"] << ")";
  text << "\ntrain " << int64_t(h.train_samples_per_s) << " samples/s, peak memory " << int64_t(peak_rss_mb())
       << " MB, " << int64_t(wall) << " s in all\nsaved the run in " << c.out
       << "/ (model.safetensors, checkpoint.safetensors, config.json, metrics.csv, curves.png"
       << (regression ? ")" : ", confusion.png)");
  say(done, text.str());
  return 0;
}

std::unique_ptr<TrainTask> make_supervised_task(bool regression) {
  return std::make_unique<SupervisedTask>(regression);
}

const std::vector<TrainTaskInfo>& train_tasks() {
  static const std::vector<TrainTaskInfo> tasks = [] {
    std::vector<std::string> classifiers;
    for (const auto& m : models::model_names())
      if (!models::is_regression(m)) classifiers.push_back(m);
    const std::vector<std::string> supervised_schedulers = {"none", "step", "cosine", "onecycle", "plateau",
                                                            "exponential"};
    return std::vector<TrainTaskInfo>{
        {.name = "classifier",
         .models = classifiers,
         .description = "images -> classes (cross-entropy, accuracy); DP-SGD with --dp-*",
         .defaults_help = "--data fashion-mnist (or mnist:DIR, cifar10:DIR, imagefolder:DIR), --epochs 1, "
                          "--batch-size 64, --lr 1e-3 (sgd: 0.01; DP-SGD: --optimizer sgd --lr 0.5), "
                          "--checkpoint-every 200 (0: each epoch only; DP-SGD: at the end only)",
         .schedulers = supervised_schedulers,
         .not_applicable = {},
         .make = [] { return make_supervised_task(false); }},
        {.name = "regression",
         .models = {"linreg"},
         .description = "a CSV column from the others (MSE, MAE, R^2)",
         .defaults_help = "--data csv:FILE with --target COL, --epochs 1, --batch-size 64, --lr 1e-3 (sgd: 0.01), "
                          "--checkpoint-every 200 (0: each epoch only)",
         .schedulers = supervised_schedulers,
         .not_applicable = {},
         .make = [] { return make_supervised_task(true); }},
        {.name = "language model",
         .models = {"lstm-lm", "gpt"},
         .description = "next-token prediction on a text corpus (random blocks; the last 10% of tokens validate)",
         .defaults_help = "--data kjv (or text:FILE), --steps 100, --batch-size 32, --lr 2e-3 (lstm-lm) / 1e-3 "
                          "(gpt), --weight-decay 0.1 with adamw (matrices only), --log-every steps/10, "
                          "--checkpoint-every 0 (at the end)",
         .schedulers = {"none", "cosine"},
         .not_applicable = {{"--epochs", "language models train for --steps on random blocks"},
                            {"--init", "starting from a run's weights is built for the image and regression models"}},
         .make = [] { return make_lm_task(); }},
        {.name = "seq2seq",
         .models = {"seq2seq"},
         .description = "an attention encoder-decoder on the dates task (human dates -> ISO 8601)",
         .defaults_help = "--data dates, --epochs 1, --batch-size 128, --lr 3e-3 (sgd: 0.1), --clip-grad-norm 1, "
                          "--log-every 100, --checkpoint-every 200 (0: each epoch only)",
         .schedulers = {"none", "cosine", "onecycle"},
         .not_applicable = {{"--init", "starting from a run's weights is built for the image and regression models"}},
         .make = make_seq2seq_task},
    };
  }();
  return tasks;
}

int cmd_train(const Argv& argv) {
  const bool help = std::any_of(argv.begin(), argv.end(), [](const std::string& s) { return s == "--help" || s == "-h"; });
  // --model chooses the task, whose options join the common ones.
  const std::string model = find_option_value(argv, "--model");
  std::string all;
  for (const auto& t : train_tasks())
    for (const auto& m : t.models) all += (all.empty() ? "" : ",") + m;
  if (model.empty()) {
    if (help) throw HelpRequested{train_help()};
    throw UsageError("--model is required (one of " + all + ")");
  }
  const TrainTaskInfo* info = nullptr;
  for (const auto& t : train_tasks())
    if (std::find(t.models.begin(), t.models.end(), model) != t.models.end()) info = &t;
  if (!info) throw UsageError("--model: invalid choice '" + model + "' (choose from {" + all + "})");

  TrainConfig c;
  std::unique_ptr<TrainTask> task = info->make();
  task->defaults(c);
  Args a("loom train --model " + model, "");
  declare_common_options(a, c);
  task->declare(a, c);
  try {
    a.parse(argv);
  } catch (const HelpRequested&) {
    throw HelpRequested{train_help()};
  }
  finish_options(a, c, *info, *task);
  if (c.device != "cpu") {
    // Without a GPU (or a CUDA build) this is the clear error naming the device and the reason.
    cuda::parse_device(c.device);
    throw UsageError("--device " + c.device + ": `loom train` runs its tasks on the CPU so far; on a GPU, train "
                     "from C++ with model->to(loom::cuda::device(0)) (docs/cuda.md) or run bench/gpu_check.sh");
  }
  return task->run(c);
}

void finish_options(const Args& a, TrainConfig& c, const TrainTaskInfo& info, TrainTask& task) {
  for (const auto& o : a.given_options())
    if (auto it = info.not_applicable.find(o); it != info.not_applicable.end())
      throw UsageError(o + " does not apply to --model " + c.model + " (" + it->second + ")");
  if (std::find(info.schedulers.begin(), info.schedulers.end(), c.scheduler) == info.schedulers.end()) {
    std::string ok;
    for (const auto& s : info.schedulers) ok += (ok.empty() ? "" : ", ") + s;
    throw UsageError("--scheduler " + c.scheduler + ": the " + info.name + " task supports " + ok);
  }
  if (a.given("--epochs") && a.given("--steps")) throw UsageError("--epochs and --steps: give one or the other");
  if (!a.given("--epochs") && !a.given("--steps") && !info.not_applicable.count("--epochs")) c.epochs = 1;
  task.finish(a, c);
  if (a.given("--momentum") && c.optimizer != "sgd") throw UsageError("--momentum applies to --optimizer sgd only");
  if (c.nesterov && (c.optimizer != "sgd" || c.momentum <= 0))
    throw UsageError("--nesterov needs --optimizer sgd and --momentum > 0");
}

}  // namespace loom::cli
