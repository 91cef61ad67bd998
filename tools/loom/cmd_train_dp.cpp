// loom train --dp-noise S --dp-clip C [--dp-delta D | --dp-epsilon E]: DP-SGD (loom/privacy/dp_sgd.h) on the
// image models. Batches are Poisson samples (rate batch/N), the update is the clipped per-sample gradient sum
// plus Gaussian noise; ε is reported as training goes (--json: "epsilon" in each step/epoch event). The run
// folder holds model.safetensors, config.json and metrics.csv, and its manifest.
//   loom train --model mlp --dp-noise 1.1 --dp-clip 1 --epochs 3 --batch-size 256 --optimizer sgd --lr 0.5
//   loom train --model cnn --dp-epsilon 3 --dp-clip 1 --epochs 5 ...      (σ chosen for ε = 3 at the end)
#include <chrono>
#include <filesystem>
#include <fstream>
#include <set>
#include <iostream>
#include <nlohmann/json.hpp>

#include "args.h"
#include "commands.h"
#include "data_spec.h"
#include "loom/backend/backend.h"
#include "loom/core/generator.h"
#include "loom/data/dataloader.h"
#include "loom/io/safetensors.h"
#include "loom/privacy/dp_sgd.h"
#include "loom/train/train.h"
#include "loom/trust/manifest.h"
#include "model_file.h"
#include "train_setup.h"

namespace loom::cli {

namespace {
namespace fs = std::filesystem;
using json = nlohmann::json;

// What DP-SGD takes of the classifier task's options; the others are refused rather than ignored.
const std::set<std::string> kDpTakes = {"--model", "--data", "--epochs", "--steps", "--batch-size", "--optimizer",
                                        "--lr", "--momentum", "--threads", "--seed", "--out", "--train-samples",
                                        "--test-samples", "--log-every", "--json", "--no-normalize"};
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
                       "--train-samples, --test-samples, --log-every, --json, --no-normalize");
  if (a.given("--dp-noise") == a.given("--dp-epsilon"))
    throw UsageError("DP-SGD needs --dp-noise S or --dp-epsilon E (one of them)");
  (void)d;
  if (!a.given("--optimizer")) c.optimizer = "sgd";
  if (!a.given("--lr")) c.lr = c.optimizer == "sgd" ? 0.5 : 1e-3;
  if (c.out.empty()) c.out = "runs/" + c.model + "-dp";
}

int train_dp(const TrainConfig& t, const DpOptions& dp_opts) {
  struct {
    TrainConfig t;
    double noise, clip, delta, target_epsilon;
    bool loop;
  } c{t, dp_opts.noise, dp_opts.clip, dp_opts.delta, dp_opts.target_epsilon, dp_opts.loop};
  const auto wall0 = std::chrono::steady_clock::now();
  if (c.t.threads > 0) set_num_threads(int(c.t.threads));
  manual_seed(uint64_t(c.t.seed));
  DataOptions dopt{.spec = c.t.data, .seed = uint64_t(c.t.seed), .train_limit = c.t.train_samples,
                   .test_limit = c.t.test_samples, .normalize = !c.t.no_normalize};
  LoadedData d = load_data(dopt);
  dopt.norm = d.norm;
  const int64_t n = d.train->size();
  const double q = std::min(1.0, double(c.t.batch_size) / double(n));
  const int64_t steps = c.t.steps > 0 ? c.t.steps : std::max<int64_t>(1, int64_t(std::llround(c.t.epochs / q)));
  if (c.target_epsilon > 0) c.noise = privacy::noise_for_epsilon(c.target_epsilon, c.delta, q, steps);

  auto model = models::make_model(c.t.model, d.shape);
  auto opt = make_optimizer(c.t, model->parameters());
  privacy::DpSgd dp(*model, {.noise_multiplier = c.noise, .max_grad_norm = c.clip, .sample_rate = q,
                             .seed = uint64_t(c.t.seed) + 1, .vectorised = !c.loop});
  const std::string unsupported = privacy::vectorised_unsupported(*model);
  const Say say{.json = c.t.json};
  say({{"event", "start"}, {"model", c.t.model}, {"dp", true}, {"noise", c.noise}, {"clip", c.clip},
       {"sample_rate", q}, {"steps", steps}, {"delta", c.delta}, {"train_samples", n}},
      "DP-SGD training " + c.t.model + " on " + c.t.data + ": " + std::to_string(n) + " samples, sample rate " +
          std::to_string(q) + ", " + std::to_string(steps) + " steps, noise " + std::to_string(c.noise) + ", clip " +
          std::to_string(c.clip) + (unsupported.empty() ? "" : " (batch-1 fallback: " + unsupported + ")"));

  fs::create_directories(c.t.out);
  begin_run_folder(c.t.out);
  std::vector<std::vector<double>> metrics;  // metrics.csv, rewritten whole after each logged step
  auto write_metrics = [&] {
    train::write_metrics_table((fs::path(c.t.out) / "metrics.csv").string(),
                               {{"step", "%.0f"}, {"epoch"}, {"loss"}, {"accuracy"}, {"epsilon"}}, metrics);
  };
  write_metrics();
  auto test_loader = std::make_shared<data::DataLoader>(d.test, data::LoaderOptions{.batch_size = 256});
  const int64_t per_epoch = std::max<int64_t>(1, int64_t(std::llround(1.0 / q)));
  const int64_t log_every = c.t.log_every > 0 ? c.t.log_every : per_epoch;
  double loss_acc = 0, correct = 0, seen = 0, dp_seconds = 0;
  model->train();
  for (int64_t s = 1; s <= steps; ++s) {
    const auto idx = dp.sample(n);
    data::Batch b;
    if (!idx.empty()) b = d.train->get_batch(idx);
    const auto t0 = std::chrono::steady_clock::now();
    auto ps = dp.private_grads(b.data, b.target, privacy::cross_entropy_sum(), n);
    dp_seconds += std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
    opt->step();
    if (!idx.empty()) {
      loss_acc += ps.loss_sum, seen += double(idx.size());
      correct += (ps.output.argmax(1) == b.target).sum().item();
    }
    if (s % log_every == 0 || s == steps) {
      const double eps = dp.epsilon(c.delta), ep = double(s) / double(per_epoch);
      const double loss = seen > 0 ? loss_acc / seen : 0, acc = seen > 0 ? correct / seen : 0;
      metrics.push_back({double(s), ep, loss, acc, eps});
      write_metrics();
      char buf[200];
      std::snprintf(buf, sizeof buf, "step %lld (epoch %.2f): loss %.4f, train accuracy %.2f%%, epsilon %.3f",
                    (long long)s, ep, loss, 100 * acc, eps);
      say({{"event", "step"}, {"step", s}, {"epoch", ep}, {"loss", loss}, {"accuracy", acc}, {"epsilon", eps}},
          buf);
      loss_acc = correct = seen = 0;
    }
  }
  train::Logs test = train::evaluate(*model, *test_loader, {});
  io::Metadata meta = model_metadata(c.t.model, d.shape, d.classes, dopt);
  meta["loom.dp"] = json{{"noise", c.noise}, {"clip", c.clip}, {"sample_rate", q}, {"steps", steps},
                         {"delta", c.delta}, {"epsilon", dp.epsilon(c.delta)}}.dump();
  train::save_weights((fs::path(c.t.out) / "model.safetensors").string(), *model, meta);
  json cfg = {{"model", c.t.model}, {"data", c.t.data}, {"dp_noise", c.noise}, {"dp_clip", c.clip},
              {"dp_delta", c.delta}, {"sample_rate", q}, {"steps", steps}, {"optimizer", c.t.optimizer},
              {"lr", c.t.lr}, {"seed", c.t.seed}, {"epsilon", dp.epsilon(c.delta)}};
  io::write_file_atomic((fs::path(c.t.out) / "config.json").string(), cfg.dump(2) + "\n");
  finish_run_folder(c.t.out);
  const double wall = std::chrono::duration<double>(std::chrono::steady_clock::now() - wall0).count();
  char buf[300];
  std::snprintf(buf, sizeof buf, "test accuracy %.2f%% at epsilon %.3f (delta %g), noise %.4f\n%.1f s in all (%.1f s "
                "in the private gradient steps); saved the run in %s/",
                100 * test["accuracy"], dp.epsilon(c.delta), c.delta, c.noise, wall, dp_seconds, c.t.out.c_str());
  say({{"event", "done"}, {"test_accuracy", test["accuracy"]}, {"test_loss", test["loss"]},
       {"epsilon", dp.epsilon(c.delta)}, {"delta", c.delta}, {"noise", c.noise}, {"steps", steps},
       {"seconds", wall}, {"dp_seconds", dp_seconds}, {"out", c.t.out}},
      buf);
  return 0;
}

}  // namespace loom::cli
