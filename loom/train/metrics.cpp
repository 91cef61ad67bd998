// Metrics read batches straight from contiguous memory: they run on every training step, and a handful of
// loops over (N, C) floats costs less than building the equivalent chain of tensor ops.
#include "loom/train/metrics.h"

#include <algorithm>
#include <cmath>
#include <iomanip>
#include <sstream>

#include "loom/autograd/grad_mode.h"

namespace loom::train {

namespace {

// The values of t as a contiguous double vector (metrics accumulate in double anyway).
std::vector<double> as_doubles(const Tensor& t) {
  NoGradGuard g;
  Tensor c = t.detach().to(DType::f64).to(Device{}).contiguous();
  const double* p = c.data<double>();
  return std::vector<double>(p, p + c.numel());
}

std::vector<int64_t> as_labels(const Tensor& t, const char* who) {
  LOOM_CHECK(t.defined(), who, ": the batch has no target");
  LOOM_CHECK(!is_floating(t.dtype()), who, ": targets must be integer class indices, got ", t.dtype());
  NoGradGuard g;
  Tensor c = t.to(DType::i64).to(Device{}).contiguous();
  const int64_t* p = c.data<int64_t>();
  return std::vector<int64_t>(p, p + c.numel());
}

// Logits (N, C) and labels (N), checked against each other.
struct ClassBatch {
  std::vector<double> logits;
  std::vector<int64_t> labels;
  int64_t n = 0, c = 0;
};

ClassBatch class_batch(const Tensor& output, const Tensor& target, const char* who) {
  LOOM_CHECK(output.dim() == 2, who, ": outputs must be (N, C) class scores, got ", output.shape());
  ClassBatch b;
  b.n = output.size(0), b.c = output.size(1);
  b.labels = as_labels(target, who);
  LOOM_CHECK(int64_t(b.labels.size()) == b.n, who, ": ", b.n, " outputs but ", b.labels.size(), " targets (shape ",
             target.shape(), ")");
  for (int64_t y : b.labels) LOOM_CHECK(y >= 0 && y < b.c, who, ": label ", y, " is outside 0..", b.c - 1);
  b.logits = as_doubles(output);
  return b;
}

// The first index of the row's maximum, as argmax does.
int64_t row_argmax(const double* row, int64_t c) {
  int64_t best = 0;
  for (int64_t j = 1; j < c; ++j)
    if (row[j] > row[best]) best = j;
  return best;
}

void check_same_shape(const Tensor& a, const Tensor& b, const char* who) {
  LOOM_CHECK(b.defined(), who, ": the batch has no target");
  LOOM_CHECK(a.numel() == b.numel(), who, ": output ", a.shape(), " and target ", b.shape(), " have different sizes");
}

void check_state(const std::vector<double>& s, size_t n, const char* who) {
  LOOM_CHECK(s.size() == n, who, ": metric state has ", s.size(), " values, expected ", n);
}

}  // namespace

// ---- MeanLoss
void MeanLoss::update(const Tensor& output, const Tensor& target) {
  add(output.item(), target.defined() && target.dim() > 0 ? target.size(0) : 1);
}
void MeanLoss::add(double loss, int64_t batch_size) {
  sum_ += loss * double(batch_size);
  count_ += batch_size;
}
void MeanLoss::load_state(const std::vector<double>& s) {
  check_state(s, 2, "MeanLoss");
  sum_ = s[0], count_ = int64_t(s[1]);
}

// ---- TopKAccuracy
TopKAccuracy::TopKAccuracy(int64_t k) : k_(k) { LOOM_CHECK(k >= 1, "TopKAccuracy: k must be >= 1, got ", k); }

std::string TopKAccuracy::name() const { return k_ == 1 ? "accuracy" : "top" + std::to_string(k_) + "_accuracy"; }

void TopKAccuracy::update(const Tensor& output, const Tensor& target) {
  ClassBatch b = class_batch(output, target, "accuracy");
  for (int64_t i = 0; i < b.n; ++i) {
    const double* row = b.logits.data() + i * b.c;
    const int64_t y = b.labels[size_t(i)];
    bool hit;
    if (k_ == 1) {
      hit = row_argmax(row, b.c) == y;
    } else {
      // The label is in the top k when fewer than k classes score strictly higher.
      int64_t above = 0;
      for (int64_t j = 0; j < b.c; ++j) above += row[j] > row[y];
      hit = above < k_;
    }
    correct_ += hit;
  }
  total_ += b.n;
}

void TopKAccuracy::load_state(const std::vector<double>& s) {
  check_state(s, 2, "TopKAccuracy");
  correct_ = int64_t(s[0]), total_ = int64_t(s[1]);
}

// ---- ConfusionMatrix
ConfusionMatrix::ConfusionMatrix(int64_t num_classes) : n_(num_classes) {
  LOOM_CHECK(num_classes >= 1, "ConfusionMatrix: num_classes must be >= 1, got ", num_classes);
  counts_.assign(size_t(n_ * n_), 0);
}

void ConfusionMatrix::reset() { std::fill(counts_.begin(), counts_.end(), 0); }

void ConfusionMatrix::update(const Tensor& output, const Tensor& target) {
  ClassBatch b = class_batch(output, target, "ConfusionMatrix");
  LOOM_CHECK(b.c == n_, "ConfusionMatrix: built for ", n_, " classes, outputs have ", b.c);
  for (int64_t i = 0; i < b.n; ++i)
    ++counts_[size_t(b.labels[size_t(i)] * n_ + row_argmax(b.logits.data() + i * b.c, b.c))];
}

double ConfusionMatrix::compute() const {
  int64_t diag = 0, total = 0;
  for (int64_t t = 0; t < n_; ++t)
    for (int64_t p = 0; p < n_; ++p) {
      total += at(t, p);
      if (t == p) diag += at(t, p);
    }
  return total > 0 ? double(diag) / double(total) : 0.0;
}

std::vector<double> ConfusionMatrix::state() const { return std::vector<double>(counts_.begin(), counts_.end()); }

void ConfusionMatrix::load_state(const std::vector<double>& s) {
  check_state(s, counts_.size(), "ConfusionMatrix");
  for (size_t i = 0; i < s.size(); ++i) counts_[i] = int64_t(s[i]);
}

int64_t ConfusionMatrix::at(int64_t truth, int64_t predicted) const {
  LOOM_CHECK(truth >= 0 && truth < n_ && predicted >= 0 && predicted < n_, "ConfusionMatrix::at: (", truth, ", ",
             predicted, ") is outside a ", n_, "x", n_, " matrix");
  return counts_[size_t(truth * n_ + predicted)];
}

std::vector<double> ConfusionMatrix::recall() const {
  std::vector<double> r(size_t(n_), 0.0);
  for (int64_t t = 0; t < n_; ++t) {
    int64_t row = 0;
    for (int64_t p = 0; p < n_; ++p) row += at(t, p);
    r[size_t(t)] = row > 0 ? double(at(t, t)) / double(row) : 0.0;
  }
  return r;
}

std::string ConfusionMatrix::to_string(const std::vector<std::string>& names) const {
  auto label = [&](int64_t i) { return size_t(i) < names.size() ? names[size_t(i)] : std::to_string(i); };
  size_t lw = 5, cw = 5;
  for (int64_t i = 0; i < n_; ++i) lw = std::max(lw, label(i).size());
  for (int64_t v : counts_) cw = std::max(cw, std::to_string(v).size() + 1);
  std::ostringstream os;
  os << std::setw(int(lw)) << std::left << "true\\pred" << std::right;
  for (int64_t p = 0; p < n_; ++p) os << std::setw(int(cw)) << p;
  os << "   recall\n";
  const std::vector<double> rec = recall();
  for (int64_t t = 0; t < n_; ++t) {
    os << std::setw(int(lw)) << std::left << label(t) << std::right;
    for (int64_t p = 0; p < n_; ++p) os << std::setw(int(cw)) << at(t, p);
    os << "   " << std::fixed << std::setprecision(1) << 100.0 * rec[size_t(t)] << "%\n";
  }
  return os.str();
}

// ---- regression
void MeanSquaredError::update(const Tensor& output, const Tensor& target) {
  check_same_shape(output, target, "mse");
  const std::vector<double> o = as_doubles(output), t = as_doubles(target);
  for (size_t i = 0; i < o.size(); ++i) sum_ += (o[i] - t[i]) * (o[i] - t[i]);
  count_ += int64_t(o.size());
}
void MeanSquaredError::load_state(const std::vector<double>& s) {
  check_state(s, 2, "MeanSquaredError");
  sum_ = s[0], count_ = int64_t(s[1]);
}

void MeanAbsoluteError::update(const Tensor& output, const Tensor& target) {
  check_same_shape(output, target, "mae");
  const std::vector<double> o = as_doubles(output), t = as_doubles(target);
  for (size_t i = 0; i < o.size(); ++i) sum_ += std::abs(o[i] - t[i]);
  count_ += int64_t(o.size());
}
void MeanAbsoluteError::load_state(const std::vector<double>& s) {
  check_state(s, 2, "MeanAbsoluteError");
  sum_ = s[0], count_ = int64_t(s[1]);
}

void R2Score::update(const Tensor& output, const Tensor& target) {
  check_same_shape(output, target, "r2");
  const std::vector<double> o = as_doubles(output), t = as_doubles(target);
  for (size_t i = 0; i < o.size(); ++i) {
    sy_ += t[i], syy_ += t[i] * t[i];
    sres_ += (o[i] - t[i]) * (o[i] - t[i]);
  }
  n_ += int64_t(o.size());
}

double R2Score::compute() const {
  if (n_ == 0) return 0.0;
  const double sstot = std::max(0.0, syy_ - sy_ * sy_ / double(n_));
  if (sstot <= 1e-12 * std::max(1.0, syy_)) return sres_ <= 1e-12 * std::max(1.0, syy_) ? 1.0 : 0.0;
  return 1.0 - sres_ / sstot;
}

void R2Score::load_state(const std::vector<double>& s) {
  check_state(s, 4, "R2Score");
  n_ = int64_t(s[0]), sy_ = s[1], syy_ = s[2], sres_ = s[3];
}

// ---- by name
MetricPtr make_metric(const std::string& name) {
  if (name == "accuracy" || name == "acc") return std::make_shared<Accuracy>();
  if (name == "mse") return std::make_shared<MeanSquaredError>();
  if (name == "mae") return std::make_shared<MeanAbsoluteError>();
  if (name == "r2") return std::make_shared<R2Score>();
  const std::string pre = "top", post = "_accuracy";
  if (name.size() > pre.size() + post.size() && name.starts_with(pre) && name.ends_with(post)) {
    const std::string k = name.substr(pre.size(), name.size() - pre.size() - post.size());
    if (k.find_first_not_of("0123456789") == std::string::npos && k.size() < 6 && std::stoi(k) >= 1)
      return std::make_shared<TopKAccuracy>(std::stoi(k));
  }
  LOOM_FAIL("unknown metric '", name, "' (known: accuracy, top<k>_accuracy such as top5_accuracy, mse, mae, r2)");
}

double accuracy(const Tensor& output, const Tensor& target, int64_t k) {
  TopKAccuracy m(k);
  m.update(output, target);
  return m.compute();
}
double mse(const Tensor& output, const Tensor& target) {
  MeanSquaredError m;
  m.update(output, target);
  return m.compute();
}
double mae(const Tensor& output, const Tensor& target) {
  MeanAbsoluteError m;
  m.update(output, target);
  return m.compute();
}
double r2_score(const Tensor& output, const Tensor& target) {
  R2Score m;
  m.update(output, target);
  return m.compute();
}

}  // namespace loom::train
