// Trainer checkpoints: the model and optimizer go in as tensors, everything else the loop needs to carry on
// (position, unfinished-epoch metrics, history, callback state, RNG streams) as one JSON section. Doubles
// are written with the shortest round-trip form, so every restored value is bit-identical.
#include <algorithm>
#include <cmath>
#include <limits>
#include <map>

#include <nlohmann/json.hpp>

#include "loom/train/checkpoint.h"
#include "loom/io/json_fields.h"
#include "loom/train/trainer.h"

namespace loom::train {

namespace {

using json = nlohmann::json;
constexpr const char* kSection = "loom.trainer";
constexpr int kFormat = 1;

json logs_to_json(const Logs& l) {
  json j = json::object();
  for (const auto& [k, v] : l) j[k] = v;  // NaN/inf become null (read back as NaN)
  return j;
}

Logs logs_from_json(const json& j) {
  Logs l;
  for (const auto& [k, v] : j.items()) l[k] = v.is_null() ? std::numeric_limits<double>::quiet_NaN() : v.get<double>();
  return l;
}

}  // namespace

std::string Trainer::state_json() const {
  json j;
  j["format"] = kFormat;
  j["epoch"] = epoch_, j["batch"] = batch_, j["step"] = step_, j["num_batches"] = num_batches_;
  j["epoch_samples"] = epoch_samples_, j["total_samples"] = total_samples_;
  j["epoch_seconds"] = epoch_seconds(), j["total_seconds"] = total_seconds_;
  json metrics = json::object();
  metrics["loss"] = loss_metric_.state();
  for (const auto& m : metrics_) metrics[m->name()] = m->state();
  j["metrics"] = metrics;
  json hist = json::array();
  for (const auto& l : history_.epochs) hist.push_back(logs_to_json(l));
  j["history"] = hist;
  j["step_driven"] = step_driven_;
  json rows = json::array();
  for (const auto& l : history_.steps) rows.push_back(logs_to_json(l));
  j["step_rows"] = rows;
  json rng = json::array({default_generator().get_state()});
  for (const Generator* g : opts_.generators) rng.push_back(g->get_state());
  j["rng"] = rng;
  json cbs = json::array();
  for (const auto& c : callbacks_) cbs.push_back({{"name", c->name()}, {"state", c->state()}});
  j["callbacks"] = cbs;
  return j.dump();
}

void Trainer::load_state_json(const std::string& text, const std::string& path) {
  json j;
  try {
    j = io::parse_json(text, path + " (trainer section)");
  } catch (const std::exception& e) {
    LOOM_FAIL(path, ": the trainer section is not valid JSON: ", e.what());
  }
  try {
    LOOM_CHECK(j.at("format").get<int>() == kFormat, "format ", j.at("format").get<int>(), " is not ", kFormat);
    const int64_t epoch = j.at("epoch"), batch = j.at("batch"), step = j.at("step"), nb = j.at("num_batches");
    LOOM_CHECK(epoch >= 0 && batch >= 0 && step >= 0 && (nb < 0 || batch <= nb), "the position (epoch ", epoch,
               ", batch ", batch, ", step ", step, ") is inconsistent");

    // Metrics must be the same list: a half-finished epoch's numbers cannot be carried into other metrics.
    const json& ms = j.at("metrics");
    std::vector<std::string> mine = {"loss"}, theirs;
    for (const auto& m : metrics_) mine.push_back(m->name());
    for (const auto& [k, v] : ms.items()) theirs.push_back(k);
    std::sort(mine.begin(), mine.end());
    LOOM_CHECK(mine == theirs,
               "the checkpoint tracks other metrics than this run (saved with a different "
               "metrics list)");
    loss_metric_.load_state(ms.at("loss").get<std::vector<double>>());
    for (auto& m : metrics_) m->load_state(ms.at(m->name()).get<std::vector<double>>());

    // Callbacks are matched by name and order of appearance; a stateful one without a saved state (or the
    // reverse) means the run is configured differently, e.g. another scheduler.
    std::vector<std::pair<std::string, std::map<std::string, double>>> saved_list;
    for (const auto& c : j.at("callbacks"))
      saved_list.emplace_back(c.at("name").get<std::string>(), c.at("state").get<std::map<std::string, double>>());
    std::vector<bool> used(saved_list.size(), false);
    for (auto& c : callbacks_) {
      size_t k = 0;
      while (k < saved_list.size() && (used[k] || saved_list[k].first != c->name())) ++k;
      if (k == saved_list.size()) {
        LOOM_CHECK(c->state().empty(), "the checkpoint has no state for callback ", c->name(),
                   " (was it added after the checkpoint was made?)");
        continue;
      }
      used[k] = true;
      c->load_state(saved_list[k].second);
    }
    for (size_t k = 0; k < saved_list.size(); ++k)
      LOOM_CHECK(used[k] || saved_list[k].second.empty(), "the checkpoint holds state for callback ",
                 saved_list[k].first, ", which this run does not have");

    const json& rng = j.at("rng");
    LOOM_CHECK(rng.size() == 1 + opts_.generators.size(), "the checkpoint has ", rng.size(),
               " generator states, this run has ", 1 + opts_.generators.size());
    default_generator().set_state(rng[0].get<std::string>());
    for (size_t i = 0; i < opts_.generators.size(); ++i) opts_.generators[i]->set_state(rng[i + 1].get<std::string>());

    history_ = History{};
    for (const auto& l : j.at("history")) history_.epochs.push_back(logs_from_json(l));
    // Checkpoints from before step-driven fits have neither key: they are DataLoader fits.
    loaded_mode_ = j.contains("step_driven") && j.at("step_driven").get<bool>() ? 1 : 0;
    step_driven_ = loaded_mode_ == 1;
    if (j.contains("step_rows"))
      for (const auto& l : j.at("step_rows")) history_.steps.push_back(logs_from_json(l));
    epoch_ = epoch, batch_ = batch, step_ = step, loaded_num_batches_ = nb;
    epoch_samples_ = j.at("epoch_samples"), total_samples_ = j.at("total_samples");
    epoch_seconds_done_ = j.at("epoch_seconds"), total_seconds_ = j.at("total_seconds");
  } catch (const Error& e) {
    LOOM_FAIL(path, ": cannot resume from this checkpoint: ", e.what());
  } catch (const std::exception& e) {
    LOOM_FAIL(path, ": the trainer section is malformed: ", e.what());
  }
}

void Trainer::save_checkpoint(const std::string& path) const {
  Checkpoint c;
  c.model = model_.state_dict();
  c.optimizer_name = opts_.optimizer->name();
  c.optimizer = opts_.optimizer->state_dict();
  c.metadata = opts_.checkpoint_metadata;
  c.metadata[kSection] = state_json();
  train::save_checkpoint(path, c);
}

void Trainer::load_checkpoint(const std::string& path) {
  Checkpoint c = train::load_checkpoint(path);
  auto it = c.metadata.find(kSection);
  LOOM_CHECK(it != c.metadata.end(), path, ": the checkpoint has no \"", kSection,
             "\" section (not made by a Trainer)");
  LOOM_CHECK(c.optimizer_name == opts_.optimizer->name(), path, ": the checkpoint was saved with the ",
             c.optimizer_name, " optimizer, this run uses ", opts_.optimizer->name());
  try {
    model_.load_state_dict(c.model);
    opts_.optimizer->load_state_dict(c.optimizer);
  } catch (const Error& e) {
    LOOM_FAIL(path, ": cannot resume from this checkpoint: ", e.what());
  }
  load_state_json(it->second, path);
}

}  // namespace loom::train
