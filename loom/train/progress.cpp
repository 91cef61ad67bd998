// The bar is redrawn at most ten times a second: writing a terminal line per step would cost more than a
// small model's training step.
#include "loom/train/progress.h"

#include <unistd.h>

#include <cmath>
#include <cstdio>
#include <iomanip>
#include <iostream>
#include <sstream>

#include <nlohmann/json.hpp>

#include "loom/train/trainer.h"

namespace loom::train {

namespace {

// Short names for the human-readable forms; JSON keeps the full ones.
std::string short_key(const std::string& k) {
  std::string s = k;
  for (const char* p : {"accuracy"}) {
    const size_t at = s.find(p);
    if (at != std::string::npos) s.replace(at, std::string(p).size(), "acc");
  }
  return s;
}

bool is_fraction(const std::string& k) { return k.find("accuracy") != std::string::npos; }

std::string fmt_value(const std::string& key, double v) {
  std::ostringstream os;
  if (is_fraction(key))
    os << std::fixed << std::setprecision(2) << 100.0 * v << "%";
  else if (key == "lr")
    os << std::setprecision(3) << v;
  else
    os << std::fixed << std::setprecision(4) << v;
  return os.str();
}

std::string epoch_prefix(const Trainer& t, int64_t epoch) {
  std::ostringstream os;
  os << "epoch " << epoch + 1 << "/" << t.epochs();
  return os.str();
}

}  // namespace

bool stdout_is_terminal() { return isatty(fileno(stdout)) != 0; }

std::string format_duration(double seconds) {
  if (!std::isfinite(seconds) || seconds < 0) seconds = 0;
  const int64_t s = int64_t(std::llround(seconds));
  char buf[48];
  if (s >= 3600)
    std::snprintf(buf, sizeof buf, "%lld:%02lld:%02lld", (long long)(s / 3600), (long long)(s / 60 % 60),
                  (long long)(s % 60));
  else
    std::snprintf(buf, sizeof buf, "%lld:%02lld", (long long)(s / 60), (long long)(s % 60));
  return buf;
}

std::string format_logs(const Logs& logs) {
  std::ostringstream os;
  auto put = [&](const std::string& k) {
    auto it = logs.find(k);
    if (it == logs.end()) return;
    if (os.tellp() > 0) os << "  ";
    os << short_key(k) << " " << fmt_value(k, it->second);
  };
  // Training values, then validation values, then the rest, each group in a fixed order.
  put("loss");
  for (const auto& [k, v] : logs)
    if (k != "loss" && !k.starts_with("val_") && k != "lr" && k != "seconds" && k != "epoch" && k != "samples_per_s" &&
        k != "train_samples_per_s" && k != "tokens_per_s")
      put(k);
  put("val_loss");
  for (const auto& [k, v] : logs)
    if (k.starts_with("val_") && k != "val_loss") put(k);
  put("lr");
  if (auto it = logs.find("samples_per_s"); it != logs.end()) os << "  " << std::llround(it->second) << " samples/s";
  if (auto it = logs.find("tokens_per_s"); it != logs.end()) os << "  " << std::llround(it->second) << " tokens/s";
  if (auto it = logs.find("seconds"); it != logs.end())
    os << "  " << std::fixed << std::setprecision(1) << it->second << "s";
  return os.str();
}

std::string logs_json(const std::string& event, const Logs& logs) {
  nlohmann::ordered_json j;
  j["event"] = event;
  if (auto it = logs.find("epoch"); it != logs.end()) j["epoch"] = int64_t(it->second);
  for (const auto& [k, v] : logs)
    if (k != "epoch") j[k] = v;
  return j.dump();
}

ProgressLogger::ProgressLogger(ProgressOptions o)
    : mode_(o.mode), log_every_(o.log_every), out_(o.out ? *o.out : std::cout) {
  if (mode_ == ProgressMode::Auto)
    mode_ = (&out_ == &std::cout && stdout_is_terminal()) ? ProgressMode::Bar : ProgressMode::Lines;
}

void ProgressLogger::on_epoch_begin(Trainer& t, int64_t epoch) { last_draw_ = {}; }

void ProgressLogger::clear_bar() {
  if (bar_width_ == 0) return;
  out_ << '\r' << std::string(bar_width_, ' ') << '\r';
  bar_width_ = 0;
}

void ProgressLogger::draw_bar(Trainer& t, const StepInfo& s) {
  const auto now = std::chrono::steady_clock::now();
  if (s.batch != s.num_batches && now - last_draw_ < std::chrono::milliseconds(100)) return;
  last_draw_ = now;
  const Logs run = t.running_logs();
  const double secs = t.epoch_seconds();
  const double rate = secs > 0 ? double(t.epoch_samples()) / secs : 0.0;
  const double per_batch = t.batch() > 0 ? secs / double(t.batch()) : 0.0;
  constexpr int kWidth = 20;
  const int filled = int(kWidth * s.batch / std::max<int64_t>(1, s.num_batches));
  std::ostringstream os;
  os << epoch_prefix(t, s.epoch) << "  " << s.batch << "/" << s.num_batches << " [" << std::string(size_t(filled), '#')
     << std::string(size_t(kWidth - filled), '-') << "]  loss " << fmt_value("loss", run.at("loss"));
  if (auto it = run.find("accuracy"); it != run.end()) os << "  acc " << fmt_value("accuracy", it->second);
  os << "  " << std::llround(rate) << " samples/s  ETA "
     << format_duration(per_batch * double(s.num_batches - s.batch));
  std::string line = os.str();
  const size_t w = line.size();
  if (w < bar_width_) line += std::string(bar_width_ - w, ' ');  // wipe the tail of a longer previous line
  out_ << '\r' << line << std::flush;
  bar_width_ = w;
}

void ProgressLogger::on_batch_end(Trainer& t, const StepInfo& s) {
  if (t.step_driven()) return;  // its progress is the metrics rows (on_step_log)
  switch (mode_) {
    case ProgressMode::Bar:
      draw_bar(t, s);
      break;
    case ProgressMode::Lines:
      if (log_every_ > 0 && s.step % log_every_ == 0) {
        Logs run = t.running_logs();
        out_ << epoch_prefix(t, s.epoch) << "  step " << s.step << "/" << s.total_steps << "  batch " << s.batch << "/"
             << s.num_batches << "  " << format_logs(run) << "\n"
             << std::flush;
      }
      break;
    case ProgressMode::Json:
      if (log_every_ > 0 && s.step % log_every_ == 0) {
        Logs run = t.running_logs();
        run["epoch"] = double(s.epoch + 1);
        run["step"] = double(s.step);
        run["batch"] = double(s.batch);
        run["batch_loss"] = s.loss;
        out_ << logs_json("step", run) << "\n" << std::flush;
      }
      break;
    default:
      break;
  }
}

void ProgressLogger::on_step_log(Trainer& t, const Logs& row) {
  if (mode_ == ProgressMode::None) return;
  if (mode_ == ProgressMode::Json) {
    Logs l = row;
    l["total_steps"] = double(t.total_steps());
    out_ << logs_json("step", l) << "\n" << std::flush;
    return;
  }
  Logs l = row;
  l.erase("step");
  out_ << "step " << int64_t(row.at("step")) << "/" << t.total_steps() << "  " << format_logs(l) << "\n" << std::flush;
}

void ProgressLogger::on_epoch_end(Trainer& t, const Logs& logs) {
  if (mode_ == ProgressMode::Json) {
    Logs l = logs;
    l["epochs"] = double(t.epochs());
    out_ << logs_json("epoch", l) << "\n" << std::flush;
    return;
  }
  if (mode_ == ProgressMode::None) return;
  clear_bar();
  const int64_t e = int64_t(logs.at("epoch")) - 1;
  out_ << epoch_prefix(t, e) << "  " << format_logs(logs) << "\n" << std::flush;
}

void ProgressLogger::on_train_end(Trainer& t, const Logs& last) {
  if (mode_ == ProgressMode::None) return;
  clear_bar();
  if (mode_ == ProgressMode::Json) {
    if (!t.history().stop_reason.empty()) {
      nlohmann::json j = {{"event", "stopped"}, {"reason", t.history().stop_reason}, {"step", t.global_step()}};
      out_ << j.dump() << "\n" << std::flush;
    }
    return;
  }
  if (t.batch() > 0 && !t.step_driven())
    out_ << epoch_prefix(t, t.epoch()) << " (stopped at batch " << t.batch() << "/" << t.num_batches() << ")  "
         << format_logs(last) << "\n";
  if (!t.history().stop_reason.empty()) out_ << t.history().stop_reason << "\n";
  out_ << std::flush;
}

}  // namespace loom::train
