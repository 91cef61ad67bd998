// A run folder: what a training run leaves behind for people and tools.
//   auto run = std::make_shared<train::RunFolder>(train::RunFolderOptions{.dir = "runs/cnn", .config_json = cfg});
//   train::fit(model, loader, {.epochs = 5, .optimizer = &opt, .callbacks = {run, ckpt}});
//   // runs/cnn/{config.json, metrics.csv, curves.png, model.safetensors}
// Everything is rewritten after each epoch (atomically, from the whole history), so the folder is complete
// and consistent whenever a run is stopped, and a resumed run's files continue the same history. A step-driven
// fit (Trainer::fit(BatchSource&)) has no epochs: metrics.csv holds its step rows, rewritten at each row, and
// the weights are written when training ends.
#pragma once
#include <string>
#include <vector>

#include "loom/io/safetensors.h"
#include "loom/train/callbacks.h"

namespace loom::train {

// One column of a metrics.csv written by write_metrics_table (below).
struct MetricsColumn {
  std::string name;             // the header
  std::string format = "%.6g";  // printf format of one value; a NaN/inf value is an empty cell
};

struct RunFolderOptions {
  std::string dir = {};
  std::string config_json = {};        // written to config.json when training begins ("" to skip)
  io::Metadata weights_metadata = {};  // stored in model.safetensors (e.g. model name, input shape, classes)
  bool weights = true;  // false: the caller saves the model (a language model writes it beside its own config)
  // A step-driven fit's metrics.csv columns, each a key of the rows (an absent key is an empty cell); empty:
  // every key as logged (write_step_metrics_csv). DP-SGD's: step, epoch, loss, accuracy, epsilon.
  std::vector<MetricsColumn> step_columns = {};
};

class RunFolder : public Callback {
 public:
  explicit RunFolder(RunFolderOptions o);
  std::string name() const override { return "RunFolder"; }
  void on_train_begin(Trainer& t) override;
  void on_epoch_end(Trainer& t, const Logs& logs) override;
  void on_step_log(Trainer& t, const Logs& row) override;
  void on_train_end(Trainer& t, const Logs& last) override;

  std::string path(const std::string& file) const;  // dir / file
  const RunFolderOptions& options() const { return opts_; }

 private:
  void write_all(Trainer& t, const std::vector<Logs>& rows);
  void write_steps(const std::vector<Logs>& rows);
  RunFolderOptions opts_;
};

// The one metrics.csv writer. Every training loop keeps its rows in memory and rewrites the whole file through
// this (atomically), so a stopped run's file is complete and a resumed run's continues the same history:
// Trainer's run folder (write_metrics_csv and write_step_metrics_csv below; a language model's rows are
// step,loss,val_loss,lr,tokens_per_s; DP-SGD's, through RunFolderOptions::step_columns, step,epoch,loss,accuracy,
// epsilon) and the seq2seq task (step,epoch,train_loss,test_loss,test_exact_match,seconds).
//   write_metrics_table("run/metrics.csv", {{"step", "%.0f"}, {"loss"}}, {{1, 2.5}, {2, 2.25}});
void write_metrics_table(const std::string& path, const std::vector<MetricsColumn>& columns,
                         const std::vector<std::vector<double>>& rows);

// metrics.csv: one row per epoch: epoch, train_loss, train_acc, ..., val_loss, val_acc, ..., lr, seconds,
// samples_per_s (columns for the values the rows hold; accuracy is written "acc").
void write_metrics_csv(const std::string& path, const std::vector<Logs>& rows);
// metrics.csv of a step-driven fit: one row per logged step: step, loss, metrics..., val_loss, val_*, lr, then
// tokens_per_s or samples_per_s (the key names as logged; 9 significant digits, so losses compare exactly enough
// to see a resumed run continue the same numbers).
void write_step_metrics_csv(const std::string& path, const std::vector<Logs>& rows);
// curves.png: loss (train and validation) per epoch, and the first metric (accuracy for classifiers).
void write_curves_png(const std::string& path, const std::vector<Logs>& rows);

// The files of a run folder.
inline constexpr const char* kModelFile = "model.safetensors";
inline constexpr const char* kCheckpointFile = "checkpoint.safetensors";

}  // namespace loom::train
