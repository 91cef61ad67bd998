// Progress output for fit(): a redrawn one-line bar on a terminal, plain lines in a log, or JSON lines.
//   train::fit(model, loader, {.epochs = 5, .optimizer = &opt, .progress = train::ProgressMode::Json});
//   // {"event":"epoch","epoch":1,"epochs":5,"loss":0.51,"accuracy":0.81,"val_loss":...,"lr":0.001,...}
//   auto p = std::make_shared<train::ProgressLogger>(train::ProgressOptions{.mode = train::ProgressMode::Lines});
#pragma once
#include <chrono>
#include <iosfwd>
#include <string>

#include "loom/train/callbacks.h"

namespace loom::train {

enum class ProgressMode {
  None,
  Auto,   // Bar when writing to a terminal, Lines otherwise
  Bar,    // "epoch 2/5  312/938 [######----] loss 0.3123 acc 88.12% 2750 samples/s ETA 0:14", redrawn with \r
  Lines,  // one line per epoch (and every log_every steps)
  Json,   // one JSON object per line: {"event":"step",...} every log_every steps, {"event":"epoch",...}
};

struct ProgressOptions {
  ProgressMode mode = ProgressMode::Auto;
  int64_t log_every = 0;
  std::ostream* out = nullptr;  // default std::cout
};

class ProgressLogger : public Callback {
 public:
  explicit ProgressLogger(ProgressOptions o = {});
  std::string name() const override { return "ProgressLogger"; }
  void on_epoch_begin(Trainer& t, int64_t epoch) override;
  void on_batch_end(Trainer& t, const StepInfo& s) override;
  void on_step_log(Trainer& t, const Logs& row) override;  // a step-driven fit: one line (or object) per row
  void on_epoch_end(Trainer& t, const Logs& logs) override;
  void on_train_end(Trainer& t, const Logs& last) override;
  ProgressMode mode() const { return mode_; }

 private:
  void draw_bar(Trainer& t, const StepInfo& s);
  void clear_bar();

  ProgressMode mode_;
  int64_t log_every_;
  std::ostream& out_;
  std::chrono::steady_clock::time_point last_draw_{};
  size_t bar_width_ = 0;  // characters of the bar line now on screen
};

// True when stdout is a terminal.
bool stdout_is_terminal();

// "0:14", "1:02:03".
std::string format_duration(double seconds);
// One epoch row for humans: "loss 0.3012  acc 89.01%  val_loss 0.3100  val_acc 88.70%  lr 0.001  12.3s".
std::string format_logs(const Logs& logs);
// The same row as a JSON object with "event": event first.
std::string logs_json(const std::string& event, const Logs& logs);

}  // namespace loom::train
