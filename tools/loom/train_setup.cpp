#include "train_setup.h"

#include <algorithm>

#include "model_file.h"

namespace loom::cli {

std::unique_ptr<optim::Optimizer> make_optimizer(const TrainConfig& c, const std::vector<Tensor>& params) {
  if (c.optimizer == "sgd")
    return std::make_unique<optim::SGD>(
        params,
        optim::SGDOptions{.lr = c.lr, .momentum = c.momentum, .weight_decay = c.weight_decay, .nesterov = c.nesterov});
  if (c.optimizer == "adamw")
    return std::make_unique<optim::AdamW>(params, optim::AdamWOptions{.lr = c.lr, .weight_decay = c.weight_decay});
  return std::make_unique<optim::Adam>(params, optim::AdamOptions{.lr = c.lr, .weight_decay = c.weight_decay});
}

Schedule make_schedule(const TrainConfig& c, optim::Optimizer& opt, int64_t total_steps) {
  Schedule s;
  const std::string& k = c.scheduler;
  if (k == "step") {
    s.scheduler = std::make_unique<optim::StepLR>(
        opt, optim::StepLROptions{.step_size = c.step_size, .gamma = c.gamma > 0 ? c.gamma : 0.1});
  } else if (k == "exponential") {
    s.scheduler = std::make_unique<optim::ExponentialLR>(opt, optim::ExponentialLROptions{c.gamma > 0 ? c.gamma : 0.9});
  } else if (k == "cosine") {
    // Per step, so --steps runs and short runs get the whole curve too.
    s.scheduler =
        std::make_unique<optim::CosineAnnealingLR>(opt, optim::CosineAnnealingLROptions{.T_max = total_steps});
    s.interval = train::Interval::Step;
  } else if (k == "onecycle") {
    s.scheduler = std::make_unique<optim::OneCycleLR>(
        opt, optim::OneCycleLROptions{.max_lr = {c.lr}, .total_steps = total_steps});
    s.interval = train::Interval::Step;
  } else if (k == "plateau") {
    s.plateau = std::make_unique<optim::ReduceLROnPlateau>(
        opt, optim::ReduceLROnPlateauOptions{.factor = c.gamma > 0 ? c.gamma : 0.1, .patience = c.patience});
  }
  return s;
}

nlohmann::json config_json(const TrainConfig& c) {
  nlohmann::ordered_json j;
  j["loom_version"] = loom_version();
  j["model"] = c.model;
  j["data"] = c.data;
  if (!c.target.empty()) j["target"] = c.target;
  if (c.steps > 0)
    j["steps"] = c.steps;
  else
    j["epochs"] = c.epochs;
  j["batch_size"] = c.batch_size;
  j["optimizer"] = c.optimizer;
  j["lr"] = c.lr;
  if (c.optimizer == "sgd") j["momentum"] = c.momentum, j["nesterov"] = c.nesterov;
  j["weight_decay"] = c.weight_decay;
  j["scheduler"] = c.scheduler;
  if (c.scheduler == "step") j["step_size"] = c.step_size;
  if (c.scheduler == "step" || c.scheduler == "exponential" || c.scheduler == "plateau") j["gamma"] = c.gamma;
  if (c.scheduler == "plateau") j["patience"] = c.patience;
  if (c.clip_grad_norm > 0) j["clip_grad_norm"] = c.clip_grad_norm;
  if (c.early_stopping > 0) j["early_stopping_patience"] = c.early_stopping;
  j["seed"] = c.seed;
  j["threads"] = c.threads;
  j["workers"] = c.workers;
  j["val_split"] = c.val_split;
  j["normalize"] = !c.no_normalize && c.model != "linreg";
  if (c.train_samples > 0) j["train_samples"] = c.train_samples;
  if (c.test_samples > 0) j["test_samples"] = c.test_samples;
  if (c.data.starts_with("imagefolder")) j["image_size"] = c.image_size;
  j["checkpoint_every"] = c.checkpoint_every;
  return nlohmann::json::parse(j.dump());  // plain json keeps the comparison in check_resumable order-free
}

void check_resumable(const nlohmann::json& saved, const nlohmann::json& now, const std::string& path) {
  // Changing these would make the resumed run a different run (other data order, model or update rule);
  // epochs/steps and the progress options may change.
  for (const char* k : {"model", "data", "target", "batch_size", "optimizer", "seed", "val_split", "train_samples",
                        "image_size", "scheduler", "normalize"}) {
    const nlohmann::json a = saved.contains(k) ? saved[k] : nlohmann::json(),
                         b = now.contains(k) ? now[k] : nlohmann::json();
    std::string flag = std::string("--") + k;  // the option's name, as the user typed it
    std::replace(flag.begin(), flag.end(), '_', '-');
    if (flag == "--normalize") flag = "--no-normalize (normalize)";
    LOOM_CHECK(a == b, path, ": cannot resume: the checkpoint was made with ", flag, " ", a.dump(), ", this run has ",
               b.dump(), " (start a new run with another --out, or use the same options)");
  }
}

}  // namespace loom::cli
