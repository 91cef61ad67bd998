// Streaming metrics for training and evaluation: feed batches with update(), read the result with compute().
//   train::Accuracy acc;  acc.update(logits, labels);  acc.update(logits2, labels2);  double a = acc.compute();
//   auto m = train::make_metric("top5_accuracy");        // by name: accuracy, top<k>_accuracy, mse, mae, r2
//   train::ConfusionMatrix cm(10);  cm.update(logits, labels);  int64_t n = cm.at(3, 5);  // true 3 -> predicted 5
// Classification metrics take logits or probabilities (N, C) and int64 labels (N); regression metrics take
// outputs and targets of the same shape. Sums are kept in double so long epochs lose no precision, and the
// state is a list of doubles so a training checkpoint can carry a half-finished epoch.
#pragma once
#include <memory>
#include <string>
#include <vector>

#include "loom/core/tensor.h"

namespace loom::train {

class Metric {
 public:
  virtual ~Metric() = default;
  // The key under which the value is logged ("accuracy", "val_accuracy" for validation).
  virtual std::string name() const = 0;
  virtual void reset() = 0;
  virtual void update(const Tensor& output, const Tensor& target) = 0;
  // The value over everything seen since reset(); 0 before any update.
  virtual double compute() const = 0;
  virtual std::vector<double> state() const = 0;
  virtual void load_state(const std::vector<double>& s) = 0;
  // Whether larger values are better (EarlyStopping's "auto" mode uses it).
  virtual bool higher_is_better() const { return true; }
};
using MetricPtr = std::shared_ptr<Metric>;

// The mean of per-batch losses weighted by batch size (what the "loss" column of a run shows).
class MeanLoss : public Metric {
 public:
  std::string name() const override { return "loss"; }
  void reset() override { sum_ = 0, count_ = 0; }
  void update(const Tensor& output, const Tensor& target) override;  // output: the scalar loss, target: unused
  void add(double loss, int64_t batch_size);
  double compute() const override { return count_ > 0 ? sum_ / double(count_) : 0.0; }
  std::vector<double> state() const override { return {sum_, double(count_)}; }
  void load_state(const std::vector<double>& s) override;
  bool higher_is_better() const override { return false; }

 private:
  double sum_ = 0;
  int64_t count_ = 0;
};

// Share of samples whose top-k predictions contain the label (k = 1: plain accuracy).
class TopKAccuracy : public Metric {
 public:
  explicit TopKAccuracy(int64_t k = 1);
  std::string name() const override;
  void reset() override { correct_ = 0, total_ = 0; }
  void update(const Tensor& output, const Tensor& target) override;
  double compute() const override { return total_ > 0 ? double(correct_) / double(total_) : 0.0; }
  std::vector<double> state() const override { return {double(correct_), double(total_)}; }
  void load_state(const std::vector<double>& s) override;

 private:
  int64_t k_;
  int64_t correct_ = 0, total_ = 0;
};

class Accuracy : public TopKAccuracy {
 public:
  Accuracy() : TopKAccuracy(1) {}
};

// counts(t, p): samples of true class t predicted as p. compute() is the accuracy (trace / total).
class ConfusionMatrix : public Metric {
 public:
  explicit ConfusionMatrix(int64_t num_classes);
  std::string name() const override { return "confusion_accuracy"; }
  void reset() override;
  void update(const Tensor& output, const Tensor& target) override;
  double compute() const override;
  std::vector<double> state() const override;
  void load_state(const std::vector<double>& s) override;
  int64_t num_classes() const { return n_; }
  int64_t at(int64_t truth, int64_t predicted) const;
  // Per-class recall (diagonal / row sum); 0 for classes never seen.
  std::vector<double> recall() const;
  // A text table with class names (or indices when `names` is empty) down and across.
  std::string to_string(const std::vector<std::string>& names = {}) const;

 private:
  int64_t n_;
  std::vector<int64_t> counts_;  // row-major (truth, predicted)
};

// Mean squared error, mean absolute error, and R^2 = 1 - SS_res / SS_tot over all elements.
class MeanSquaredError : public Metric {
 public:
  std::string name() const override { return "mse"; }
  void reset() override { sum_ = 0, count_ = 0; }
  void update(const Tensor& output, const Tensor& target) override;
  double compute() const override { return count_ > 0 ? sum_ / double(count_) : 0.0; }
  std::vector<double> state() const override { return {sum_, double(count_)}; }
  void load_state(const std::vector<double>& s) override;
  bool higher_is_better() const override { return false; }

 private:
  double sum_ = 0;
  int64_t count_ = 0;
};

class MeanAbsoluteError : public Metric {
 public:
  std::string name() const override { return "mae"; }
  void reset() override { sum_ = 0, count_ = 0; }
  void update(const Tensor& output, const Tensor& target) override;
  double compute() const override { return count_ > 0 ? sum_ / double(count_) : 0.0; }
  std::vector<double> state() const override { return {sum_, double(count_)}; }
  void load_state(const std::vector<double>& s) override;
  bool higher_is_better() const override { return false; }

 private:
  double sum_ = 0;
  int64_t count_ = 0;
};

class R2Score : public Metric {
 public:
  std::string name() const override { return "r2"; }
  void reset() override { n_ = 0, sy_ = 0, syy_ = 0, sres_ = 0; }
  void update(const Tensor& output, const Tensor& target) override;
  // 1 - SS_res / SS_tot; when every target is equal (SS_tot = 0) it is 1 for a perfect fit, else 0.
  double compute() const override;
  std::vector<double> state() const override { return {double(n_), sy_, syy_, sres_}; }
  void load_state(const std::vector<double>& s) override;

 private:
  int64_t n_ = 0;
  double sy_ = 0, syy_ = 0, sres_ = 0;
};

// "accuracy" (or "acc"), "top<k>_accuracy" (e.g. "top5_accuracy"), "mse", "mae", "r2". Throws naming the
// unknown metric and the known ones.
MetricPtr make_metric(const std::string& name);

// One-shot forms for a single batch (or a whole set already in memory).
double accuracy(const Tensor& output, const Tensor& target, int64_t k = 1);
double mse(const Tensor& output, const Tensor& target);
double mae(const Tensor& output, const Tensor& target);
double r2_score(const Tensor& output, const Tensor& target);

}  // namespace loom::train
