#include "loom/train/lm_trainer.h"
#include "loom/io/json_fields.h"

#include <chrono>
#include <cmath>
#include <filesystem>
#include <sstream>

#include <nlohmann/json.hpp>

#include "loom/autograd/grad_mode.h"
#include "loom/core/error.h"
#include "loom/io/safetensors.h"
#include "loom/nn/loss.h"
#include "loom/ops/autocast.h"
#include "loom/train/checkpoint.h"
#include "loom/train/run_folder.h"

namespace loom::train {

namespace fs = std::filesystem;
using json = nlohmann::json;
using Clock = std::chrono::steady_clock;

namespace {

constexpr const char* kStateKey = "loom.lm_trainer";

double seconds_since(Clock::time_point t0) { return std::chrono::duration<double>(Clock::now() - t0).count(); }

}  // namespace

Tensor lm_loss(models::LanguageModel& model, const Tensor& x, const Tensor& y) {
  Tensor logits = model(x);
  const int64_t V = logits.size(-1);
  return cross_entropy(logits.reshape({-1, V}), y.reshape({-1}));
}

double evaluate_lm(models::LanguageModel& model, const text::LanguageModelDataset& ds, int64_t batch_size,
                   int64_t max_tokens) {
  const int64_t T = ds.context();
  int64_t blocks = (ds.size() + T - 1) / T;  // starts 0, T, ... < size()
  if (max_tokens > 0) blocks = std::min(blocks, std::max<int64_t>(1, max_tokens / T));
  LOOM_CHECK(blocks > 0, "evaluate_lm: the validation split is shorter than one block of ", T, " tokens");
  const bool was_training = model.is_training();
  model.eval();
  NoGradGuard ng;
  double sum = 0;
  for (int64_t b0 = 0; b0 < blocks; b0 += batch_size) {
    std::vector<int64_t> starts;
    for (int64_t b = b0; b < std::min(blocks, b0 + batch_size); ++b) starts.push_back(b * T);
    data::Batch batch = ds.get_batch(starts);
    sum += lm_loss(model, batch.data, batch.target).item() * double(starts.size());
  }
  model.train(was_training);
  return sum / double(blocks);
}

LMTrainer::LMTrainer(models::LanguageModel& model, optim::Optimizer& opt, optim::LRScheduler* scheduler,
                     text::LMData data, LMTrainOptions o)
    : model_(model), opt_(opt), sched_(scheduler), data_(std::move(data)), o_(std::move(o)) {
  LOOM_CHECK(data_.train && data_.val, "LMTrainer: missing train or validation data");
  LOOM_CHECK(o_.steps >= 1 && o_.batch_size >= 1 && o_.grad_accum >= 1,
             "LMTrainer: steps, batch_size and grad_accum must be >= 1, got ", o_.steps, ", ", o_.batch_size, ", ",
             o_.grad_accum);
}

std::string LMTrainer::checkpoint_path() const { return (fs::path(o_.out) / "checkpoint.safetensors").string(); }

double LMTrainer::train_step() {
  model_.train();
  opt_.zero_grad(true);
  double total = 0;
  for (int64_t k = 0; k < o_.grad_accum; ++k) {
    data::Batch b = data_.train->get_batch(o_.batch_size);
    Tensor loss;
    {  // forward + loss in bf16 products when asked; backward follows each product's forward precision
      AutocastGuard ac(o_.bf16 ? DType::bf16 : autocast_dtype());
      loss = o_.train_loss ? o_.train_loss(model_(b.data), b) : lm_loss(model_, b.data, b.target);
    }
    const double v = loss.item();
    LOOM_CHECK(std::isfinite(v), "LMTrainer: the loss became ", v, " at step ", step_ + 1,
               " (try a lower --lr or --clip-grad-norm)");
    total += v;
    (o_.grad_accum > 1 ? loss * (1.0 / double(o_.grad_accum)) : loss).backward();
  }
  if (o_.clip_grad_norm > 0) optim::clip_grad_norm_(model_.parameters(), o_.clip_grad_norm);
  opt_.step();
  if (sched_) sched_->step();
  ++step_;
  return total / double(o_.grad_accum);
}

double LMTrainer::evaluate() {
  AutocastGuard ac(o_.bf16 ? DType::bf16 : autocast_dtype());
  return evaluate_lm(model_, *data_.val, o_.batch_size, o_.eval_tokens);
}

LMTrainResult LMTrainer::fit() {
  const int64_t log_every = o_.log_every > 0 ? o_.log_every : std::max<int64_t>(1, o_.steps / 10);
  const int64_t tokens_per_step = o_.batch_size * o_.grad_accum * data_.train->context();
  const auto wall0 = Clock::now();
  double train_seconds = 0, loss = 0;
  int64_t session_steps = 0;
  LMTrainResult r;
  r.val_loss = std::numeric_limits<double>::quiet_NaN();
  while (step_ < o_.steps) {
    const double lr = opt_.get_lr(0);  // the lr this step uses
    const auto t0 = Clock::now();
    loss = train_step();
    train_seconds += seconds_since(t0);
    ++session_steps;
    const bool last = step_ == o_.steps;
    const bool eval = last || (o_.eval_every > 0 && step_ % o_.eval_every == 0);
    if (eval || step_ % log_every == 0) {
      LMStepLog row{.step = step_, .loss = loss, .lr = lr,
                    .tokens_per_s = double(session_steps * tokens_per_step) / std::max(train_seconds, 1e-9)};
      if (eval) row.val_loss = r.val_loss = evaluate();
      history_.push_back(row);
      if (!o_.out.empty()) write_metrics();
      if (o_.on_log) o_.on_log(row);
    }
    if (!o_.out.empty() && (last || (o_.checkpoint_every > 0 && step_ % o_.checkpoint_every == 0)))
      save_checkpoint(checkpoint_path());
  }
  r.steps = step_;
  r.loss = loss;
  if (session_steps == 0) r.val_loss = evaluate();  // resumed a finished run
  r.train_tokens_per_s = double(session_steps * tokens_per_step) / std::max(train_seconds, 1e-9);
  r.seconds = seconds_since(wall0);
  return r;
}

void LMTrainer::write_metrics() const {
  std::vector<std::vector<double>> rows;
  for (const auto& h : history_) rows.push_back({double(h.step), h.loss, h.val_loss, h.lr, h.tokens_per_s});
  fs::create_directories(o_.out);
  write_metrics_table((fs::path(o_.out) / "metrics.csv").string(),
                      {{"step", "%.0f"}, {"loss", "%.9g"}, {"val_loss", "%.9g"}, {"lr", "%.9g"},
                       {"tokens_per_s", "%.9g"}},
                      rows);
}

void LMTrainer::save_checkpoint(const std::string& path) const {
  json st;
  st["step"] = step_;
  st["train_generator"] = data_.train->generator().get_state();
  st["val_generator"] = data_.val->generator().get_state();
  st["default_generator"] = default_generator().get_state();  // dropout draws from it
  if (sched_) st["scheduler"] = sched_->state_dict().scalars;
  json hist = json::array();
  for (const auto& h : history_)
    hist.push_back({h.step, h.loss, std::isnan(h.val_loss) ? json(nullptr) : json(h.val_loss), h.lr, h.tokens_per_s});
  st["history"] = hist;
  Checkpoint c;
  for (const auto& [k, t] : model_.state_dict()) c.model.insert(k, t);
  c.optimizer_name = opt_.name();
  c.optimizer = opt_.state_dict();
  c.metadata = o_.checkpoint_metadata;
  c.metadata[kStateKey] = st.dump();
  if (fs::path(path).has_parent_path()) fs::create_directories(fs::path(path).parent_path());
  train::save_checkpoint(path, c);
}

void LMTrainer::load_checkpoint(const std::string& path) {
  Checkpoint c = train::load_checkpoint(path);
  auto it = c.metadata.find(kStateKey);
  LOOM_CHECK(it != c.metadata.end(), path, ": not a language-model training checkpoint (no ", kStateKey, " entry)");
  LOOM_CHECK(c.optimizer_name == opt_.name(), path, ": the checkpoint's optimizer is ", c.optimizer_name,
             ", this run uses ", opt_.name());
  json st;
  try {
    st = io::parse_json(it->second, path + " (" + std::string(kStateKey) + ")");
  } catch (const json::exception&) {
    LOOM_FAIL(path, ": the ", kStateKey, " entry is not valid JSON (the checkpoint is corrupt)");
  }
  LOOM_CHECK(st.is_object(), path, ": the ", kStateKey, " entry is not a JSON object (the checkpoint is corrupt)");
  model_.load_state_dict(c.model, true);
  opt_.load_state_dict(c.optimizer);
  // .at() throughout: a corrupt entry must be a message naming the checkpoint, not undefined behaviour.
  try {
    if (sched_) {
      LOOM_CHECK(st.contains("scheduler"), path, ": the checkpoint has no LR scheduler state, this run has a scheduler");
      optim::StateDict sd;
      sd.scalars = st.at("scheduler").get<std::map<std::string, double>>();
      sched_->load_state_dict(sd);
    }
    data_.train->generator().set_state(st.at("train_generator").get<std::string>());
    data_.val->generator().set_state(st.at("val_generator").get<std::string>());
    default_generator().set_state(st.at("default_generator").get<std::string>());
    step_ = st.at("step").get<int64_t>();
    LOOM_CHECK(step_ >= 0, path, ": the checkpoint's step is negative (", step_, ")");
    history_.clear();
    for (const auto& h : st.at("history"))
      history_.push_back({.step = h.at(0).get<int64_t>(), .loss = h.at(1).get<double>(),
                          .val_loss = h.at(2).is_null() ? std::numeric_limits<double>::quiet_NaN() : h.at(2).get<double>(),
                          .lr = h.at(3).get<double>(), .tokens_per_s = h.at(4).get<double>()});
  } catch (const json::exception& e) {
    LOOM_FAIL(path, ": the ", kStateKey, " entry is malformed (", e.what(), ")");
  }
}

}  // namespace loom::train
