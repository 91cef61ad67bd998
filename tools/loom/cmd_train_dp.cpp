// loom train --dp-noise S --dp-clip C [--dp-delta D | --dp-epsilon E]: DP-SGD on the image models, as a mode of the
// one training loop (train::Trainer's step-driven fit, privacy/dp_fit.h): batches are Poisson samples (rate
// batch/N), the update is the clipped per-sample gradient sum plus Gaussian noise; ε is reported as training goes
// (--json: "epsilon" in each step event). The run folder holds model.safetensors, config.json, metrics.csv
// (step,epoch,loss,accuracy,epsilon), checkpoint.safetensors and its manifest; --resume continues a run exactly.
//   loom train --model mlp --dp-noise 1.1 --dp-clip 1 --epochs 3 --batch-size 256 --optimizer sgd --lr 0.5
//   loom train --model cnn --dp-epsilon 3 --dp-clip 1 --epochs 5 ...      (σ chosen for ε = 3 at the end)
#include <chrono>
#include <filesystem>
#include <set>
#include <nlohmann/json.hpp>

#include "args.h"
#include "commands.h"
#include "data_spec.h"
#include "loom/backend/backend.h"
#include "loom/core/generator.h"
#include "loom/data/dataloader.h"
#include "loom/io/json_fields.h"
#include "loom/privacy/dp_fit.h"
#include "loom/train/train.h"
#include "model_file.h"
#include "train_setup.h"

namespace loom::cli {

namespace {
namespace fs = std::filesystem;
using json = nlohmann::json;

// What DP-SGD takes of the classifier task's options; the others are refused rather than ignored.
const std::set<std::string> kDpTakes = {"--model", "--data", "--epochs", "--steps", "--batch-size", "--optimizer",
                                        "--lr", "--momentum", "--threads", "--seed", "--out", "--train-samples",
                                        "--test-samples", "--log-every", "--json", "--no-normalize",
                                        "--checkpoint-every", "--resume"};

// What a DP checkpoint records of the run ("loom.config": the classifier's record plus the DP options) and how a
// --resume compares it: the privacy options first, since they decide what ε means.
ResumeRecord dp_record() {
  ResumeRecord r;
  r.order = {"model", "data", "train_samples", "batch_size", "sample_rate", "dp_epsilon", "dp_noise", "dp_clip",
             "dp_delta", "dp_loop", "optimizer", "lr", "momentum", "seed", "normalize", "test_samples"};
  r.absent = {{"train_samples", 0}, {"test_samples", 0}};
  r.flags = {{"normalize", "--no-normalize"}, {"sample_rate", "sample rate (--batch-size / training samples)"}};
  r.explain = {{"sample_rate", "each sample's chance of joining a batch, which the privacy accounting assumes"},
               {"dp_noise", "the noise multiplier; with --dp-epsilon it is chosen for the planned --steps/--epochs"}};
  return r;
}

// The step rows as DP-SGD has always printed them.
struct DpProgress final : train::Callback {
  Say say;
  std::string name() const override { return "DpProgress"; }
  void on_step_log(train::Trainer&, const train::Logs& r) override {
    const double step = r.at("step"), ep = r.at("epoch"), loss = r.at("loss"), acc = r.at("accuracy"),
                 eps = r.at("epsilon");
    char buf[200];
    std::snprintf(buf, sizeof buf, "step %lld (epoch %.2f): loss %.4f, train accuracy %.2f%%, epsilon %.3f",
                  (long long)step, ep, loss, 100 * acc, eps);
    say({{"event", "step"}, {"step", int64_t(step)}, {"epoch", ep}, {"loss", loss}, {"accuracy", acc},
         {"epsilon", eps}},
        buf);
  }
};

}  // namespace

void declare_dp_options(Args& a, DpOptions& d) {
  const Range pos{.min = 0, .exclusive_min = true};
  a.option("--dp-noise", &d.noise, "S", "DP-SGD: noise multiplier sigma", {.min = 0});
  a.option("--dp-clip", &d.clip, "C", "DP-SGD: per-sample gradient norm bound (default 1)", pos);
  a.option("--dp-delta", &d.delta, "D", "DP-SGD: delta of the reported (epsilon, delta) (default 1e-5)",
           {.min = 0, .max = 1, .exclusive_min = true});
  a.option("--dp-epsilon", &d.target_epsilon, "E", "DP-SGD: choose sigma so that epsilon is E after the planned steps",
           pos);
  a.flag("--dp-loop", &d.loop, "DP-SGD: per-sample gradients by one backward per sample (slow; for checking)");
}

bool dp_requested(const Args& a) {
  for (const auto& o : a.given_options())
    if (o.starts_with("--dp-")) return true;
  return false;
}

void finish_dp(const Args& a, TrainConfig& c, DpOptions& d) {
  for (const auto& o : a.given_options())
    if (!o.starts_with("--dp-") && !kDpTakes.count(o))
      throw UsageError(o + " does not apply to DP-SGD training (--dp-*): it takes " +
                       "--epochs/--steps, --batch-size, --optimizer, --lr, --momentum, --threads, --seed, --out, "
                       "--train-samples, --test-samples, --log-every, --checkpoint-every, --resume, --json, "
                       "--no-normalize");
  if (a.given("--dp-noise") == a.given("--dp-epsilon"))
    throw UsageError("DP-SGD needs --dp-noise S or --dp-epsilon E (one of them)");
  (void)d;
  if (!a.given("--optimizer")) c.optimizer = "sgd";
  if (!a.given("--lr")) c.lr = c.optimizer == "sgd" ? 0.5 : 1e-3;
  if (c.out.empty()) c.out = "runs/" + c.model + "-dp";
}

int train_dp(const TrainConfig& t, const DpOptions& dp_opts) {
  const auto wall0 = std::chrono::steady_clock::now();
  if (t.threads > 0) set_num_threads(int(t.threads));
  manual_seed(uint64_t(t.seed));
  DataOptions dopt{.spec = t.data, .seed = uint64_t(t.seed), .train_limit = t.train_samples,
                   .test_limit = t.test_samples, .normalize = !t.no_normalize};
  LoadedData d = load_data(dopt);
  dopt.norm = d.norm;
  const int64_t n = d.train->size();
  const double q = std::min(1.0, double(t.batch_size) / double(n));
  const int64_t steps = t.steps > 0 ? t.steps : std::max<int64_t>(1, int64_t(std::llround(t.epochs / q)));
  const double delta = dp_opts.delta;
  const double noise = dp_opts.target_epsilon > 0
                           ? privacy::noise_for_epsilon(dp_opts.target_epsilon, delta, q, steps)
                           : dp_opts.noise;

  auto model = models::make_model(t.model, d.shape);
  auto opt = make_optimizer(t, model->parameters());
  privacy::DpSgd dp(*model, {.noise_multiplier = noise, .max_grad_norm = dp_opts.clip, .sample_rate = q,
                             .seed = uint64_t(t.seed) + 1, .vectorised = !dp_opts.loop});
  const Say say{.json = t.json};

  // The run's record: resuming compares it, so a changed privacy option is refused, never silently applied.
  json record = config_json(t);
  record["sample_rate"] = q, record["dp_noise"] = noise, record["dp_clip"] = dp_opts.clip;
  record["dp_delta"] = delta, record["dp_loop"] = dp_opts.loop;
  if (dp_opts.target_epsilon > 0) record["dp_epsilon"] = dp_opts.target_epsilon;
  const std::string ckpt = (fs::path(t.out) / train::kCheckpointFile).string();
  const bool resuming = t.resume && fs::exists(ckpt);
  std::vector<std::string> resume_notes;
  if (resuming) {
    const train::Checkpoint saved = train::load_checkpoint(ckpt);
    auto it = saved.metadata.find("loom.config");
    LOOM_CHECK(it != saved.metadata.end(), ckpt, ": the checkpoint has no loom.config entry (not made by loom train)");
    resume_notes = check_resume(io::parse_json(it->second, ckpt + " (loom.config)"), record, ckpt, dp_record());
  } else if (t.resume) {
    say({{"event", "note"}, {"message", "no checkpoint in " + t.out + "; starting from scratch"}},
        "no checkpoint in " + t.out + "; starting from scratch");
  } else if (fs::exists(ckpt)) {
    say({{"event", "note"}, {"message", "replacing the previous run in " + t.out}},
        "note: replacing the previous run in " + t.out + " (--resume continues it instead)");
  }

  const io::Metadata meta = model_metadata(t.model, d.shape, d.classes, dopt);
  io::Metadata ckpt_meta = meta;
  ckpt_meta["loom.config"] = record.dump();
  auto progress = std::make_shared<DpProgress>();
  progress->say = say;
  auto run_folder = std::make_shared<train::RunFolder>(train::RunFolderOptions{
      .dir = t.out,
      .weights = false,  // saved below with the privacy figures (loom.dp)
      .step_columns = {{"step", "%.0f"}, {"epoch"}, {"loss"}, {"accuracy"}, {"epsilon"}}});
  auto checkpoints = std::make_shared<train::ModelCheckpoint>(
      train::ModelCheckpointOptions{.path = ckpt, .every_steps = t.checkpoint_every, .each_epoch = false});
  const int64_t per_epoch = std::max<int64_t>(1, int64_t(std::llround(1.0 / q)));
  double dp_seconds = 0;
  train::FitOptions fo = privacy::dp_fit_options(
      dp, *d.train,
      {.steps = steps,
       .optimizer = opt.get(),
       .callbacks = {run_folder, progress, checkpoints},
       .progress = train::ProgressMode::None,
       .log_every = t.log_every > 0 ? t.log_every : per_epoch,
       .resume_from = resuming ? ckpt : "",
       .checkpoint_metadata = ckpt_meta},
      {.delta = delta, .grad_seconds = &dp_seconds});
  train::Trainer trainer(*model, fo);
  if (resuming && trainer.global_step() >= steps)
    throw UsageError((t.steps > 0 ? "--steps " + std::to_string(t.steps) : "--epochs " + fmt_number(double(t.epochs))) +
                     ": the checkpoint in " + t.out + " is already at step " + std::to_string(trainer.global_step()) +
                     " of the " + std::to_string(steps) + " this run plans (--steps/--epochs are the run's total; "
                     "give more to continue it)");

  const std::string unsupported = privacy::vectorised_unsupported(*model);
  json start = {{"event", "start"}, {"model", t.model}, {"dp", true}, {"noise", noise}, {"clip", dp_opts.clip},
                {"sample_rate", q}, {"steps", steps}, {"delta", delta}, {"train_samples", n}};
  std::string intro = "DP-SGD training " + t.model + " on " + t.data + ": " + std::to_string(n) +
                      " samples, sample rate " + std::to_string(q) + ", " + std::to_string(steps) + " steps, noise " +
                      std::to_string(noise) + ", clip " + std::to_string(dp_opts.clip) +
                      (unsupported.empty() ? "" : " (batch-1 fallback: " + unsupported + ")");
  if (resuming) {
    start["resumed_at_step"] = trainer.global_step();
    intro += "\nresuming from " + ckpt + " at step " + std::to_string(trainer.global_step()) + " (epsilon " +
             std::to_string(dp.epsilon(delta)) + " so far)";
  }
  say(start, intro);
  for (const auto& note : resume_notes) say({{"event", "note"}, {"message", note}}, "note: " + note);

  fs::create_directories(t.out);
  begin_run_folder(t.out);  // no stale manifest while training
  trainer.fit(privacy::dp_batches(dp, *d.train));

  data::DataLoader test_loader(d.test, data::LoaderOptions{.batch_size = 256});
  train::Logs test = train::evaluate(*model, test_loader, {});
  const double eps = dp.epsilon(delta);
  io::Metadata weights_meta = meta;
  weights_meta["loom.dp"] = json{{"noise", noise}, {"clip", dp_opts.clip}, {"sample_rate", q}, {"steps", steps},
                                 {"delta", delta}, {"epsilon", eps}}.dump();
  train::save_weights((fs::path(t.out) / train::kModelFile).string(), *model, weights_meta);
  json cfg = {{"model", t.model}, {"data", t.data}, {"dp_noise", noise}, {"dp_clip", dp_opts.clip},
              {"dp_delta", delta}, {"sample_rate", q}, {"steps", steps}, {"optimizer", t.optimizer},
              {"lr", t.lr}, {"seed", t.seed}, {"epsilon", eps}};
  io::write_file_atomic((fs::path(t.out) / "config.json").string(), cfg.dump(2) + "\n");
  finish_run_folder(t.out);
  const double wall = std::chrono::duration<double>(std::chrono::steady_clock::now() - wall0).count();
  char buf[300];
  std::snprintf(buf, sizeof buf, "test accuracy %.2f%% at epsilon %.3f (delta %g), noise %.4f\n%.1f s in all (%.1f s "
                "in the private gradient steps); saved the run in %s/",
                100 * test["accuracy"], eps, delta, noise, wall, dp_seconds, t.out.c_str());
  say({{"event", "done"}, {"test_accuracy", test["accuracy"]}, {"test_loss", test["loss"]}, {"epsilon", eps},
       {"delta", delta}, {"noise", noise}, {"steps", steps}, {"seconds", wall}, {"dp_seconds", dp_seconds},
       {"out", t.out}},
      buf);
  return 0;
}

}  // namespace loom::cli
