#include "train_setup.h"

#include <algorithm>
#include <iostream>
#include <sstream>

#include "loom/core/error.h"
#include "model_file.h"

namespace loom::cli {

namespace {
using json = nlohmann::json;
const Range kPositive{.min = 0, .exclusive_min = true}, kNonNegative{.min = 0};
}  // namespace

void declare_common_options(Args& a, TrainConfig& c) {
  std::vector<std::string> models;
  for (const auto& t : train_tasks()) models.insert(models.end(), t.models.begin(), t.models.end());
  a.choice("--model", &c.model, models, "what to train; it chooses the task (below) (required)");
  a.option("--data", &c.data, "SPEC", "the training data (each task lists its kinds and default)");
  a.option("--epochs", &c.epochs, "N", "passes over the training data (default 1)", {.min = 1});
  a.option("--steps", &c.steps, "N", "train for N optimizer steps in all instead of whole epochs", {.min = 1});
  a.option("--batch-size", &c.batch_size, "B", "samples (blocks, pairs) per step", {.min = 1, .max = 1 << 20});
  a.choice("--optimizer", &c.optimizer, {"sgd", "adam", "adamw"}, "the update rule (default adam)");
  a.option("--lr", &c.lr, "X", "learning rate (default: per task and optimizer, below)", kPositive);
  a.option("--momentum", &c.momentum, "M", "sgd momentum (default 0)", {.min = 0, .max = 1});
  a.flag("--nesterov", &c.nesterov, "sgd: Nesterov momentum");
  a.option("--weight-decay", &c.weight_decay, "W", "weight decay (default 0)", kNonNegative);
  a.choice("--scheduler", &c.scheduler, {"none", "step", "cosine", "onecycle", "plateau", "exponential"},
           "learning-rate schedule (default none; each task lists those it supports)");
  a.option("--clip-grad-norm", &c.clip_grad_norm, "X", "clip the gradients' global norm to X (0: off)", kNonNegative);
  a.option("--device", &c.device, "D", "cpu (default), or cuda / cuda:N: fails clearly without a GPU or a CUDA build");
  a.option("--threads", &c.threads, "T", "compute threads (default: all cores)", {.min = 1, .max = 1024});
  a.option("--seed", &c.seed, "S", "seed for initialisation, data order and splits (default 0)", kNonNegative);
  a.option("--out", &c.out, "DIR", "run folder (default runs/MODEL-DATA)");
  a.option("--init", &c.init, "DIR",
           "start from the weights of this run folder (same model and input), with a fresh optimizer; a pruned "
           "run (loom prune) keeps its masks, so pruned weights stay zero");
  a.flag("--resume", &c.resume,
         "continue the run in --out from its checkpoint; the options must be the checkpoint's, except those "
         "listed under \"resuming\" below");
  a.flag("--json", &c.json, "print one JSON object per line instead of text");
  a.option("--log-every", &c.log_every, "N", "a progress line (or JSON step event) every N steps", kNonNegative);
  a.option("--checkpoint-every", &c.checkpoint_every, "N", "save a training checkpoint every N steps", kNonNegative);
}

std::string train_help() {
  std::ostringstream os;
  os << "usage: loom train --model MODEL [options]\n\n"
        "Train a model; the run (weights, config, metrics, checkpoint) goes to the folder --out. --model chooses\n"
        "the task:\n";
  for (const auto& t : train_tasks()) {
    std::string ms;
    for (const auto& m : t.models) ms += (ms.empty() ? "" : ", ") + m;
    os << "  " << t.name << " (--model " << ms << "): " << t.description << "\n";
  }
  TrainConfig scratch;
  Args common("loom train", "");
  declare_common_options(common, scratch);
  os << "\ncommon options (every task):\n" << common.options_help() << "  -h, --help" << std::string(20, ' ')
     << "show this help\n";
  std::set<std::string> shown;  // a task option declared with the same text by an earlier task is named only
  for (const auto& t : train_tasks()) {
    std::string ms;
    for (const auto& m : t.models) ms += (ms.empty() ? "" : ", ") + m;
    TrainConfig c;
    auto task = t.make();
    task->defaults(c);
    Args a("loom train --model " + t.models.front(), "");
    task->declare(a, c);
    os << "\n" << t.name << " options (--model " << ms << "):\n";
    std::ostringstream again;
    std::istringstream lines(a.options_help());
    std::string line, block, opt;
    auto flush = [&] {
      if (block.empty()) return;
      if (shown.count(block))
        again << (again.tellp() > 0 ? ", " : "") << opt;
      else
        os << block, shown.insert(block);
      block.clear();
    };
    for (; std::getline(lines, line);) {
      if (line.starts_with("  --")) {
        flush();
        opt = line.substr(2, line.find(' ', 2) - 2);
      }
      block += line + "\n";
    }
    flush();
    if (again.tellp() > 0) os << "  and, as above: " << again.str() << "\n";
    std::string sch;
    for (const auto& s : t.schedulers) sch += (sch.empty() ? "" : ", ") + s;
    os << "  --scheduler: " << sch << "\n";
    for (const auto& [o, why] : t.not_applicable) os << "  " << o << ": not taken (" << why << ")\n";
    if (!t.defaults_help.empty()) os << "  defaults: " << t.defaults_help << "\n";
  }
  os << "\nresuming (--resume): every option recorded in the checkpoint must be the same, or the run is refused\n"
        "naming the option, both values and the fix. These may change, and are applied:\n";
  for (const auto& [k, how] : resume_may_change()) os << "  " << k << ": " << how << "\n";
  return os.str();
}

void Say::operator()(const nlohmann::json& event, const std::string& text) const {
  if (quiet) return;
  if (json)
    std::cout << event.dump() << "\n" << std::flush;
  else if (!text.empty())
    std::cout << text << "\n" << std::flush;
}

std::unique_ptr<optim::Optimizer> make_optimizer(const TrainConfig& c, const std::vector<Tensor>& params,
                                                 OptimizerRule rule) {
  if (c.optimizer == "sgd")
    return std::make_unique<optim::SGD>(
        params,
        optim::SGDOptions{.lr = c.lr, .momentum = c.momentum, .weight_decay = c.weight_decay, .nesterov = c.nesterov});
  if (c.optimizer == "adamw") {
    if (!rule.adamw_decay_matrices_only)
      return std::make_unique<optim::AdamW>(params, optim::AdamWOptions{.lr = c.lr, .weight_decay = c.weight_decay});
    // nanoGPT's rule: matrices (and embeddings) decay; biases, norm weights and other 1-d tensors do not.
    std::vector<Tensor> decay, no_decay;
    for (const auto& p : params) (p.dim() >= 2 ? decay : no_decay).push_back(p);
    std::vector<optim::ParamGroup<optim::AdamWOptions>> groups;
    if (!decay.empty()) groups.push_back({decay, {.lr = c.lr, .weight_decay = c.weight_decay}});
    if (!no_decay.empty()) groups.push_back({no_decay, {.lr = c.lr, .weight_decay = 0}});
    return std::make_unique<optim::AdamW>(std::move(groups));
  }
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
  if (!c.init.empty()) j["init"] = c.init;
  return nlohmann::json::parse(j.dump());  // plain json keeps the comparison in check_resumable order-free
}

const std::map<std::string, std::string>& resume_may_change() {
  static const std::map<std::string, std::string> m = {
      {"--epochs / --steps", "the run's total: training continues up to the new value (not with a cosine or "
                             "onecycle schedule, whose length it is)"},
      {"--threads", "compute threads (the same thread count keeps a resumed run bit-identical to an unbroken one)"},
      {"--workers", "data loading threads (the batches are the same)"},
      {"--checkpoint-every, --log-every, --eval-every, --eval-tokens, --progress, --json", "from the resume on"},
  };
  return m;
}

namespace {

// A recorded value as the user would type it.
std::string as_typed(const json& v) {
  if (v.is_null()) return "(not set)";
  if (v.is_string()) return v.get<std::string>();
  if (v.is_number_float()) return fmt_number(v.get<double>());
  return v.dump();
}

}  // namespace

std::vector<std::string> check_resume(const json& saved, const json& now, const std::string& ckpt,
                                      const ResumeRecord& record) {
  // Keys that may change (recorded for the record's sake) and bookkeeping that is not an option.
  static const std::map<std::string, std::string> may_change = {
      {"epochs", "--epochs"}, {"steps", "--steps"}, {"threads", "--threads"}, {"workers", "--workers"},
      {"checkpoint_every", "--checkpoint-every"}, {"log_every", "--log-every"}, {"eval_every", "--eval-every"},
      {"eval_tokens", "--eval-tokens"}};
  static const std::set<std::string> not_options = {"loom_version"};
  std::vector<std::string> keys = record.order;
  std::set<std::string> rest;
  for (const auto& [k, v] : now.items()) rest.insert(k);
  for (const auto& [k, v] : saved.items()) rest.insert(k);
  for (const auto& k : rest)
    if (std::find(keys.begin(), keys.end(), k) == keys.end()) keys.push_back(k);
  std::vector<std::string> notes;
  for (const auto& k : keys) {
    if (not_options.count(k)) continue;
    const bool in_saved = saved.contains(k), in_now = now.contains(k);
    if (!in_saved && !in_now) continue;
    if (!in_saved && record.skip_if_missing.count(k)) continue;  // an older checkpoint: not recorded then
    auto value = [&](const json& j, bool has) {
      if (has) return j[k];
      auto a = record.absent.find(k);
      return a != record.absent.end() ? a->second : json();
    };
    const json was = value(saved, in_saved), is = value(now, in_now);
    if (was == is) continue;
    std::string flag = "--" + k;
    std::replace(flag.begin(), flag.end(), '_', '-');
    if (auto f = record.flags.find(k); f != record.flags.end()) flag = f->second;
    if (auto m = may_change.find(k); m != may_change.end()) {
      if (k != "epochs" && k != "steps" && in_saved && in_now)
        notes.push_back("resuming with " + m->second + " " + as_typed(is) + " (the checkpoint's run had " +
                        as_typed(was) + "; applied from here on)");
      continue;
    }
    std::string then = "the checkpoint was made with " + flag + " " + as_typed(was),
                here = "this run has " + flag + " " + as_typed(is), fix = "resume with " + flag + " " + as_typed(was);
    if (was.is_boolean()) {  // a flag: say whether it was given
      const bool given_then = was.get<bool>() != flag.starts_with("--no-");
      then = std::string("the checkpoint was made ") + (given_then ? "with " : "without ") + flag;
      here = given_then ? "this run leaves it out" : "this run gives it";
      fix = (given_then ? "resume with " : "resume without ") + flag;
    }
    if (auto e = record.explain.find(k); e != record.explain.end()) then += " (" + e->second + ")";
    LOOM_FAIL(ckpt, ": cannot resume: ", then, ", ", here, ". An option that shapes the run cannot change when ",
              "resuming: ", fix, ", or start a new run with another --out (loom train --help, \"resuming\", lists ",
              "what may change)");
  }
  return notes;
}

void check_resume_position(const TrainConfig& c, int64_t step, int64_t epoch) {
  if (c.steps > 0 && step >= c.steps)
    throw UsageError("--steps " + std::to_string(c.steps) + ": the checkpoint in " + c.out + " is already at step " +
                     std::to_string(step) + " (--steps is the total for the run)");
  if (c.steps == 0 && epoch >= c.epochs)
    throw UsageError("--epochs " + std::to_string(c.epochs) + ": the checkpoint in " + c.out + " has already done " +
                     std::to_string(epoch) + " epoch(s) (--epochs is the total for the run)");
}

}  // namespace loom::cli
