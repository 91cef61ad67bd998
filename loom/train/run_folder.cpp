#include "loom/train/run_folder.h"

#include <cmath>
#include <cstdio>
#include <filesystem>
#include <limits>
#include <set>

#include "loom/train/checkpoint.h"
#include "loom/train/plot.h"
#include "loom/train/trainer.h"

namespace loom::train {

namespace {

// Log keys in column order: loss and metrics, their val_ counterparts, then lr and timings.
std::vector<std::string> columns(const std::vector<Logs>& rows) {
  std::set<std::string> keys;
  for (const auto& r : rows)
    for (const auto& [k, v] : r) keys.insert(k);
  const std::set<std::string> tail = {"epoch", "lr", "seconds", "samples_per_s", "train_samples_per_s"};
  std::vector<std::string> cols;
  if (keys.count("loss")) cols.push_back("loss");
  for (const auto& k : keys)
    if (k != "loss" && !k.starts_with("val_") && !tail.count(k)) cols.push_back(k);
  if (keys.count("val_loss")) cols.push_back("val_loss");
  for (const auto& k : keys)
    if (k.starts_with("val_") && k != "val_loss") cols.push_back(k);
  for (const char* k : {"lr", "seconds", "samples_per_s"})
    if (keys.count(k)) cols.push_back(k);
  return cols;
}

std::string header_name(std::string k) {
  if (const size_t at = k.find("accuracy"); at != std::string::npos) k.replace(at, 8, "acc");
  if (k.starts_with("val_") || k == "lr" || k == "seconds" || k == "samples_per_s") return k;
  return "train_" + k;
}

std::string first_metric(const std::vector<Logs>& rows) {
  for (const auto& k : columns(rows))
    if (k != "loss" && !k.starts_with("val_") && k != "lr" && k != "seconds" && k != "samples_per_s") return k;
  return "";
}

}  // namespace

void write_metrics_table(const std::string& path, const std::vector<MetricsColumn>& columns,
                         const std::vector<std::vector<double>>& rows) {
  std::string out;
  for (size_t i = 0; i < columns.size(); ++i) {
    if (i) out += ',';  // (appending separately: `"," + str` trips a GCC 12 -Wrestrict false positive)
    out += columns[i].name;
  }
  out += "\n";
  char buf[64];
  for (const auto& r : rows) {
    LOOM_CHECK(r.size() == columns.size(), path, ": a metrics row has ", r.size(), " values for ", columns.size(),
               " columns");
    for (size_t i = 0; i < r.size(); ++i) {
      if (i) out += ",";
      if (!std::isfinite(r[i])) continue;  // empty cell: not measured in this row
      std::snprintf(buf, sizeof buf, columns[i].format.c_str(), r[i]);
      out += buf;
    }
    out += "\n";
  }
  io::write_file_atomic(path, out);
}

void write_metrics_csv(const std::string& path, const std::vector<Logs>& rows) {
  const std::vector<std::string> cols = columns(rows);
  const double none = std::numeric_limits<double>::quiet_NaN();
  std::vector<MetricsColumn> table = {{"epoch", "%.0f"}};
  for (const auto& c : cols)
    table.push_back({header_name(c), c == "seconds" || c == "samples_per_s" ? "%.2f" : "%.6g"});
  std::vector<std::vector<double>> values;
  for (const auto& r : rows) {
    std::vector<double> v;
    auto e = r.find("epoch");
    v.push_back(e != r.end() ? double(int64_t(e->second)) : none);
    for (const auto& c : cols) {
      auto it = r.find(c);
      v.push_back(it != r.end() ? it->second : none);
    }
    values.push_back(std::move(v));
  }
  write_metrics_table(path, table, values);
}

void write_step_metrics_csv(const std::string& path, const std::vector<Logs>& rows) {
  std::vector<std::string> cols = {"step"};
  for (const auto& c : columns(rows))
    if (c != "step" && c != "tokens_per_s") cols.push_back(c);
  // columns() puts samples_per_s last among the known tail keys; tokens_per_s is its counterpart
  for (const auto& r : rows)
    if (r.count("tokens_per_s")) {
      cols.push_back("tokens_per_s");
      break;
    }
  std::vector<MetricsColumn> table;
  for (const auto& c : cols) table.push_back({c, c == "step" ? "%.0f" : "%.9g"});
  std::vector<std::vector<double>> values;
  for (const auto& r : rows) {
    std::vector<double> v;
    for (const auto& c : cols) {
      auto it = r.find(c);
      v.push_back(it != r.end() ? it->second : std::numeric_limits<double>::quiet_NaN());
    }
    values.push_back(std::move(v));
  }
  write_metrics_table(path, table, values);
}

void write_curves_png(const std::string& path, const std::vector<Logs>& rows) {
  auto series = [&](const std::string& key, const std::string& label, Rgb color) {
    Series s{.name = label, .x = {}, .y = {}, .color = color};
    for (const auto& r : rows) {
      auto e = r.find("epoch");
      auto v = r.find(key);
      if (e == r.end() || v == r.end()) continue;
      s.x.push_back(e->second);
      s.y.push_back(v->second);
    }
    return s;
  };
  auto chart = [&](const std::string& key, const std::string& title) {
    Chart c{.title = title, .xlabel = "epoch", .series = {}, .percent = key.find("accuracy") != std::string::npos};
    c.series.push_back(series(key, "train", kBlue));
    Series v = series("val_" + key, "validation", kOrange);
    if (!v.x.empty()) c.series.push_back(v);
    return c;
  };
  std::vector<Chart> charts = {chart("loss", "loss")};
  const std::string m = first_metric(rows);
  if (!m.empty()) charts.push_back(chart(m, m));
  write_png(path, render_charts(charts));
}

RunFolder::RunFolder(RunFolderOptions o) : opts_(std::move(o)) {
  LOOM_CHECK(!opts_.dir.empty(), "RunFolder: dir is empty");
}

std::string RunFolder::path(const std::string& file) const {
  return (std::filesystem::path(opts_.dir) / file).string();
}

void RunFolder::on_train_begin(Trainer&) {
  std::error_code ec;
  std::filesystem::create_directories(opts_.dir, ec);
  LOOM_CHECK(!ec && std::filesystem::is_directory(opts_.dir), opts_.dir, ": cannot create the run folder (",
             ec.message(), ")");
  if (!opts_.config_json.empty()) io::write_file_atomic(path("config.json"), opts_.config_json + "\n");
}

void RunFolder::write_all(Trainer& t, const std::vector<Logs>& rows) {
  if (opts_.weights) save_weights(path(kModelFile), t.model(), opts_.weights_metadata);
  if (rows.empty()) return;
  write_metrics_csv(path("metrics.csv"), rows);
  write_curves_png(path("curves.png"), rows);
}

void RunFolder::on_epoch_end(Trainer& t, const Logs&) { write_all(t, t.history().epochs); }

void RunFolder::write_steps(const std::vector<Logs>& rows) {
  if (opts_.step_columns.empty()) return write_step_metrics_csv(path("metrics.csv"), rows);
  std::vector<std::vector<double>> values;
  for (const auto& r : rows) {
    std::vector<double> v;
    for (const auto& c : opts_.step_columns) {
      auto it = r.find(c.name);
      v.push_back(it != r.end() ? it->second : std::numeric_limits<double>::quiet_NaN());
    }
    values.push_back(std::move(v));
  }
  write_metrics_table(path("metrics.csv"), opts_.step_columns, values);
}

void RunFolder::on_step_log(Trainer& t, const Logs&) { write_steps(t.history().steps); }

void RunFolder::on_train_end(Trainer& t, const Logs& last) {
  if (t.step_driven()) {
    if (opts_.weights) save_weights(path(kModelFile), t.model(), opts_.weights_metadata);
    if (!t.history().steps.empty()) write_steps(t.history().steps);
    return;
  }
  std::vector<Logs> rows = t.history().epochs;
  if (t.batch() > 0) rows.push_back(last);  // the unfinished epoch, so a --steps run still gets its row
  write_all(t, rows);
}

}  // namespace loom::train
