// loom train: data + model + optimizer from the options, fit() with a run folder and checkpoints, then the
// test-set evaluation and a final summary ({"event":"done",...} with --json).
#include <chrono>
#include <filesystem>
#include <iostream>

#include "args.h"
#include "commands.h"
#include "data_spec.h"
#include "loom/backend/backend.h"
#include "loom/io/json_fields.h"
#include "loom/core/generator.h"
#include "loom/data/dataloader.h"
#include "loom/dist/dist.h"
#include "loom/nn/loss.h"
#include "loom/nn/repr.h"
#include "loom/train/confusion_png.h"
#include "loom/train/train.h"
#include "loom/trust/manifest.h"
#include "model_file.h"
#include "train_setup.h"

namespace loom::cli {

namespace {

namespace fs = std::filesystem;
using json = nlohmann::json;

TrainConfig parse_train(const Argv& argv) {
  TrainConfig c;
  Args a("loom train",
         "Train a model on a dataset; the run (weights, checkpoint, config, metrics, curves) goes to --out.\n"
         "(Language models have their own options: loom train --model lstm-lm --help, or --model gpt --help.)");
  const Range pos{.min = 0, .exclusive_min = true}, nonneg{.min = 0};
  a.choice("--model", &c.model, models::model_names(), "the architecture (required)");
  a.option("--data", &c.data, "SPEC", "fashion-mnist (default), mnist:DIR, cifar10:DIR, imagefolder:DIR, csv:FILE");
  a.option("--target", &c.target, "COL", "csv: the column to predict");
  a.option("--epochs", &c.epochs, "N", "passes over the training data (default 1)", {.min = 1});
  a.option("--steps", &c.steps, "N", "train for N optimizer steps instead of whole epochs", {.min = 1});
  a.option("--batch-size", &c.batch_size, "B", "samples per step (default 64)", {.min = 1, .max = 1 << 20});
  a.choice("--optimizer", &c.optimizer, {"sgd", "adam", "adamw"}, "the update rule (default adam)");
  a.option("--lr", &c.lr, "X", "learning rate (default 1e-3 for adam/adamw, 0.01 for sgd)", pos);
  a.option("--momentum", &c.momentum, "M", "sgd momentum (default 0)", {.min = 0, .max = 1});
  a.flag("--nesterov", &c.nesterov, "sgd: Nesterov momentum");
  a.option("--weight-decay", &c.weight_decay, "W", "weight decay (default 0)", nonneg);
  a.choice("--scheduler", &c.scheduler, {"none", "step", "cosine", "onecycle", "plateau", "exponential"},
           "learning-rate schedule (default none)");
  a.option("--step-size", &c.step_size, "N", "step: epochs between decays (default 1)", {.min = 1});
  a.option("--gamma", &c.gamma, "G", "step/exponential/plateau: decay factor (0.1, 0.9, 0.1)",
           {.min = 0, .max = 1, .exclusive_min = true});
  a.option("--patience", &c.patience, "N", "plateau: epochs without improvement before decaying (default 2)",
           {.min = 0});
  a.option("--early-stopping", &c.early_stopping, "N", "stop after N epochs without val_loss improvement", {.min = 1});
  a.option("--clip-grad-norm", &c.clip_grad_norm, "X", "clip the gradients' global norm to X", pos);
  a.option("--threads", &c.threads, "T", "compute threads (default: all cores)", {.min = 1, .max = 1024});
  a.option("--seed", &c.seed, "S", "seed for initialisation, shuffling and splits (default 0)", nonneg);
  a.option("--out", &c.out, "DIR", "run folder (default runs/MODEL-DATA)");
  a.flag("--resume", &c.resume, "continue the run in --out from its checkpoint");
  a.flag("--distributed", &c.distributed,
         "data-parallel over the ranks of mpirun -np N (--batch-size is per rank; rank 0 prints and writes)");
  a.flag("--zero", &c.zero, "with --distributed: shard the optimizer state over the ranks (ZeRO-1)");
  a.flag("--json", &c.json, "print one JSON object per line instead of text");
  a.flag("--no-normalize", &c.no_normalize, "feed images in [0, 1] instead of normalising each channel");
  a.option("--workers", &c.workers, "N", "data loading threads (default 0: on the training thread)",
           {.min = 0, .max = 64});
  a.option("--val-split", &c.val_split, "F", "hold out this fraction of the training data for validation",
           {.min = 0, .max = 0.9});
  a.option("--checkpoint-every", &c.checkpoint_every, "N",
           "save a training checkpoint every N steps (default 200; "
           "0: each epoch only)",
           {.min = 0});
  a.option("--image-size", &c.image_size, "N", "imagefolder: resize images to NxN (default 32)",
           {.min = 8, .max = 1024});
  a.option("--train-samples", &c.train_samples, "N", "use only the first N training samples", {.min = 1});
  a.option("--test-samples", &c.test_samples, "N", "use only the first N test samples", {.min = 1});
  a.option("--log-every", &c.log_every, "N", "a progress line (or JSON step event) every N steps", {.min = 1});
  a.choice("--progress", &c.progress, {"auto", "bar", "lines", "none"},
           "progress display (default: bar on a terminal)");
  a.parse(argv);

  if (c.model.empty()) throw UsageError("--model is required (one of linreg, mlp, lenet, cnn)");
  if (a.given("--epochs") && a.given("--steps")) throw UsageError("--epochs and --steps: give one or the other");
  if (!a.given("--epochs") && !a.given("--steps")) c.epochs = 1;
  if (a.given("--momentum") && c.optimizer != "sgd") throw UsageError("--momentum applies to --optimizer sgd only");
  if (c.nesterov && (c.optimizer != "sgd" || c.momentum <= 0))
    throw UsageError("--nesterov needs --optimizer sgd and --momentum > 0");
  if (!a.given("--lr")) c.lr = c.optimizer == "sgd" ? 0.01 : 1e-3;
  DataOptions d{.spec = c.data, .target = c.target};
  check_data_options(d);
  const bool csv = c.data.starts_with("csv:");
  if (c.model == "linreg" && !csv) throw UsageError("--model linreg needs --data csv:FILE --target COL");
  if (c.model != "linreg" && csv) throw UsageError("--data csv: is for --model linreg (the others take images)");
  if (c.out.empty()) c.out = "runs/" + c.model + "-" + split_spec(c.data).first;
  if (c.zero && !c.distributed) throw UsageError("--zero needs --distributed");
  if (c.zero && c.resume) throw UsageError("--zero cannot --resume: checkpoints do not hold the sharded optimizer state");
  return c;
}

std::shared_ptr<data::DataLoader> loader(data::DatasetPtr ds, int64_t batch, bool shuffle, const TrainConfig& c) {
  if (!ds) return nullptr;
  return std::make_shared<data::DataLoader>(
      ds, data::LoaderOptions{
              .batch_size = batch, .shuffle = shuffle, .num_workers = int(c.workers), .seed = uint64_t(c.seed)});
}

bool g_quiet = false;  // ranks other than 0 of a --distributed run print nothing

void say(const TrainConfig& c, const json& event, const std::string& text) {
  if (g_quiet) return;
  if (c.json)
    std::cout << event.dump() << "\n" << std::flush;
  else if (!text.empty())
    std::cout << text << "\n" << std::flush;
}

std::string pct(double v) {
  char buf[32];
  std::snprintf(buf, sizeof buf, "%.2f%%", 100.0 * v);
  return buf;
}

}  // namespace

int cmd_train(const Argv& argv) {
  // Language models take their own options and loop (cmd_train_lm.cpp).
  for (size_t i = 0; i < argv.size(); ++i)
    if (argv[i] == "--model=lstm-lm" || argv[i] == "--model=gpt" ||
        (argv[i] == "--model" && i + 1 < argv.size() && (argv[i + 1] == "lstm-lm" || argv[i + 1] == "gpt")))
      return cmd_train_lm(argv);
  // Sequence-to-sequence models (the dates task) have their own loop too (cmd_train_seq2seq.cpp).
  for (size_t i = 0; i < argv.size(); ++i)
    if (argv[i] == "--model=seq2seq" || (argv[i] == "--model" && i + 1 < argv.size() && argv[i + 1] == "seq2seq"))
      return cmd_train_seq2seq(argv);
  // Differentially private training (--dp-noise/--dp-epsilon ...) has its own loop (cmd_train_dp.cpp).
  for (const auto& s : argv)
    if (s.starts_with("--dp-")) return cmd_train_dp(argv);
  const TrainConfig c = parse_train(argv);
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
  g_quiet = rank != 0;
  if (comm)
    train_loader = std::make_shared<data::DataLoader>(
        train_set, data::LoaderOptions{.batch_size = c.batch_size,
                                       .num_workers = int(c.workers),
                                       .sampler = std::make_shared<data::DistributedSampler>(
                                           train_set->size(), rank, world, uint64_t(c.seed))});
  auto val_loader = loader(val_set, 256, false, c);
  auto test_loader = c.val_split > 0 ? loader(d.test, 256, false, c) : val_loader;

  auto model = models::make_model(c.model, d.shape);
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
  const json cfg = config_json(c);
  json cfg_full = cfg;
  cfg_full["input_shape"] = models::input_shape(c.model, d.shape, 1);
  cfg_full["num_parameters"] = model->num_parameters();
  cfg_full["train_samples_total"] = train_set->size();
  cfg_full["classes"] = d.classes;
  if (!d.norm.empty()) cfg_full["normalization"] = {{"mean", d.norm.mean}, {"std", d.norm.std}};
  bool resuming = false;
  if (c.resume && fs::exists(ckpt_path)) {
    train::Checkpoint saved = train::load_checkpoint(ckpt_path);
    auto it = saved.metadata.find("loom.config");
    LOOM_CHECK(it != saved.metadata.end(), ckpt_path,
               ": the checkpoint has no loom.config entry (not made by loom train)");
    check_resumable(io::parse_json(it->second, ckpt_path + " (loom.config)"), cfg, ckpt_path);
    auto ws = saved.metadata.find("loom.world_size");
    const std::string saved_world = ws == saved.metadata.end() ? "1" : ws->second;
    LOOM_CHECK(saved_world == std::to_string(world), ckpt_path, ": the run was made with ", saved_world,
               " rank(s) and this one has ", world, "; resume with the same mpirun -np (the data order and "
               "per-rank batch depend on it)");
    resuming = true;
  } else if (c.resume) {
    say(c, {{"event", "note"}, {"message", "no checkpoint in " + c.out + "; starting from scratch"}},
        "no checkpoint in " + c.out + "; starting from scratch");
  } else if (fs::exists(ckpt_path)) {
    say(c, {{"event", "note"}, {"message", "replacing the previous run in " + c.out}},
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
    // --steps / --epochs are totals for the run: a checkpoint already there would train nothing and report the
    // old model as if trained now.
    if (c.steps > 0 && trainer.global_step() >= c.steps)
      throw UsageError("--steps " + std::to_string(c.steps) + ": the checkpoint in " + c.out + " is already at step " +
                       std::to_string(trainer.global_step()) + " (--steps is the total for the run)");
    if (c.steps == 0 && trainer.epoch() >= c.epochs)
      throw UsageError("--epochs " + std::to_string(c.epochs) + ": the checkpoint in " + c.out + " has already done " +
                       std::to_string(trainer.epoch()) + " epoch(s) (--epochs is the total for the run)");
    intro << "\nresuming from " << ckpt_path << " at epoch " << trainer.epoch() + 1 << ", batch " << trainer.batch()
          << " (step " << trainer.global_step() << ")";
    start["resumed_at_step"] = trainer.global_step();
  }
  if (comm) {
    intro << "\ndata-parallel over " << world << " ranks (MPI): batch " << c.batch_size << " per rank, "
          << c.batch_size * world << " per step" << (c.zero ? ", optimizer state sharded (ZeRO-1)" : "");
    start["world_size"] = world;
  }
  say(c, start, intro.str());

  if (comm) comm->reset_comm_seconds();
  if (rank == 0) trust::remove_manifest(c.out);  // a killed run must not keep a stale manifest
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
  trust::write_manifest(c.out);
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
  say(c, done, text.str());
  return 0;
}

}  // namespace loom::cli
