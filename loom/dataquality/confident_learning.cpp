#include "loom/dataquality/confident_learning.h"

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <numeric>
#include <sstream>

#include "loom/core/error.h"
#include "loom/io/safetensors.h"

namespace loom::dataquality {

namespace {

using Index = std::vector<int64_t>;

// Rounds values so the rounded sum equals the rounded original sum: the difference goes, one unit each, to the
// entries whose rounding moved them furthest in the other direction (cleanlab's round_preserving_sum).
std::vector<int64_t> round_preserving_sum(const std::vector<double>& v) {
  std::vector<int64_t> r(v.size());
  double total = 0;
  int64_t rsum = 0;
  for (size_t i = 0; i < v.size(); ++i) {
    r[i] = int64_t(std::llround(v[i]));
    total += v[i];
    rsum += r[i];
  }
  int64_t diff = int64_t(std::llround(total)) - rsum;
  std::vector<size_t> order(v.size());
  std::iota(order.begin(), order.end(), 0);
  // Positive diff: add to the largest (v - r); negative: take from the smallest.
  std::stable_sort(order.begin(), order.end(), [&](size_t a, size_t b) {
    return diff > 0 ? v[a] - double(r[a]) > v[b] - double(r[b]) : v[a] - double(r[a]) < v[b] - double(r[b]);
  });
  for (size_t i = 0; diff != 0 && !order.empty(); i = (i + 1) % order.size()) {
    const int64_t step = diff > 0 ? 1 : -1;
    if (step < 0 && r[order[i]] == 0 && v[order[i]] >= 0) {  // never below zero for counts
      bool any = false;
      for (size_t j = 0; j < r.size(); ++j) any = any || r[j] > 0;
      if (!any) break;
      continue;
    }
    r[order[i]] += step;
    diff -= step;
  }
  return r;
}

}  // namespace

std::vector<int64_t> round_preserving_row_totals(const std::vector<double>& m, int64_t k) {
  LOOM_CHECK(int64_t(m.size()) == k * k, "round_preserving_row_totals: expected ", k, "x", k, " values, got ",
             m.size());
  std::vector<int64_t> out(m.size());
  for (int64_t i = 0; i < k; ++i) {
    std::vector<double> row(m.begin() + i * k, m.begin() + (i + 1) * k);
    std::vector<int64_t> r = round_preserving_sum(row);
    std::copy(r.begin(), r.end(), out.begin() + i * k);
  }
  return out;
}

ConfidentLearningResult find_label_issues(const std::vector<double>& probs, const std::vector<int64_t>& labels,
                                          int64_t k, const ConfidentLearningOptions& o) {
  const int64_t n = int64_t(labels.size());
  LOOM_CHECK(k >= 2, "find_label_issues: need at least 2 classes, got ", k);
  LOOM_CHECK(n >= 1, "find_label_issues: no examples");
  LOOM_CHECK(int64_t(probs.size()) == n * k, "find_label_issues: ", n, " labels and ", k,
             " classes need ", n * k, " probabilities, got ", probs.size());
  for (int64_t i = 0; i < n; ++i)
    LOOM_CHECK(labels[size_t(i)] >= 0 && labels[size_t(i)] < k, "find_label_issues: label ", labels[size_t(i)],
               " of example ", i, " is outside 0..", k - 1);
  for (size_t i = 0; i < probs.size(); ++i)
    LOOM_CHECK(std::isfinite(probs[i]) && probs[i] >= 0, "find_label_issues: probability ", probs[i],
               " at example ", int64_t(i) / k, " class ", int64_t(i) % k, " is not a finite value >= 0");
  auto p = [&](int64_t i, int64_t j) { return probs[size_t(i * k + j)]; };

  ConfidentLearningResult r;
  r.num_classes = k;
  // Per-class thresholds: the mean self-confidence of the examples given that class.
  std::vector<int64_t> counts(size_t(k), 0);
  r.thresholds.assign(size_t(k), 0.0);
  for (int64_t i = 0; i < n; ++i) {
    counts[size_t(labels[size_t(i)])]++;
    r.thresholds[size_t(labels[size_t(i)])] += p(i, labels[size_t(i)]);
  }
  for (int64_t j = 0; j < k; ++j) r.thresholds[size_t(j)] = counts[size_t(j)] ? r.thresholds[size_t(j)] / double(counts[size_t(j)]) : 0.0;

  // The confident joint: each example whose probability reaches the threshold of at least one class counts
  // under (given, guess); guess is the only such class, or the argmax when several reach theirs.
  r.confident_joint.assign(size_t(k * k), 0);
  for (int64_t i = 0; i < n; ++i) {
    int64_t confident = 0, first = -1, argmax = 0;
    for (int64_t j = 0; j < k; ++j) {
      if (p(i, j) >= r.thresholds[size_t(j)] - 1e-6) {
        ++confident;
        if (first < 0) first = j;
      }
      if (p(i, j) > p(i, argmax)) argmax = j;
    }
    if (confident == 0) continue;
    const int64_t guess = confident > 1 ? argmax : first;
    r.confident_joint[size_t(labels[size_t(i)] * k + guess)]++;
  }
  for (int64_t j = 0; j < k; ++j)  // cleanlab keeps at least one on the diagonal
    r.confident_joint[size_t(j * k + j)] = std::max<int64_t>(r.confident_joint[size_t(j * k + j)], 1);

  // Calibration: each row rescaled to the number of examples given that label, the whole to N.
  std::vector<double> cal(size_t(k * k), 0.0);
  double total = 0;
  for (int64_t i = 0; i < k; ++i) {
    double row = 0;
    for (int64_t j = 0; j < k; ++j) row += double(r.confident_joint[size_t(i * k + j)]);
    for (int64_t j = 0; j < k; ++j)
      cal[size_t(i * k + j)] = row > 0 ? double(r.confident_joint[size_t(i * k + j)]) / row * double(counts[size_t(i)]) : 0;
    for (int64_t j = 0; j < k; ++j) total += cal[size_t(i * k + j)];
  }
  for (double& v : cal) v = total > 0 ? v / total * double(n) : 0;
  r.calibrated_joint = round_preserving_row_totals(cal, k);

  double s = 0;
  for (int64_t v : r.calibrated_joint) s += double(v);
  r.joint.resize(size_t(k * k));
  for (size_t i = 0; i < r.joint.size(); ++i) r.joint[i] = s > 0 ? double(r.calibrated_joint[i]) / s : 0;
  r.prior.assign(size_t(k), 0.0);
  for (int64_t i = 0; i < k; ++i)
    for (int64_t j = 0; j < k; ++j) r.prior[size_t(j)] += r.joint[size_t(i * k + j)];
  r.noise_matrix.resize(size_t(k * k));
  for (int64_t i = 0; i < k; ++i)
    for (int64_t j = 0; j < k; ++j)
      r.noise_matrix[size_t(i * k + j)] = r.prior[size_t(j)] > 0 ? r.joint[size_t(i * k + j)] / r.prior[size_t(j)] : 0;

  // How many to prune per (given, true) cell: the calibrated joint, with at least min_examples_per_class kept
  // on each diagonal; what a diagonal gains is taken evenly from that given class's non-zero noise counts.
  std::vector<double> prune(size_t(k * k));
  for (int64_t g = 0; g < k; ++g) {
    const double diag = double(r.calibrated_joint[size_t(g * k + g)]);
    const double new_diag = std::max(diag, double(o.min_examples_per_class));
    int64_t nonzero = 0;
    for (int64_t t = 0; t < k; ++t) nonzero += t != g && r.calibrated_joint[size_t(g * k + t)] > 0;
    const double take = (new_diag - diag) / double(std::max<int64_t>(nonzero, 1));
    for (int64_t t = 0; t < k; ++t)
      prune[size_t(g * k + t)] = t == g ? new_diag : std::max(0.0, double(r.calibrated_joint[size_t(g * k + t)]) - take);
  }
  const std::vector<int64_t> prune_counts = round_preserving_row_totals(prune, k);

  // prune_by_noise_rate: within each given class g, for each other class t, the prune_counts[g][t] examples
  // with the largest margin p_t - p_g.
  std::vector<char> flagged(size_t(n), 0);
  std::vector<Index> by_class(static_cast<size_t>(k));
  for (int64_t i = 0; i < n; ++i) by_class[size_t(labels[size_t(i)])].push_back(i);
  for (int64_t g = 0; g < k; ++g) {
    Index& members = by_class[size_t(g)];
    for (int64_t t = 0; t < k; ++t) {
      const int64_t m = std::min<int64_t>(prune_counts[size_t(g * k + t)], int64_t(members.size()));
      if (t == g || m <= 0) continue;
      Index order = members;
      std::stable_sort(order.begin(), order.end(),
                       [&](int64_t a, int64_t b) { return p(a, t) - p(a, g) > p(b, t) - p(b, g); });
      for (int64_t q = 0; q < m; ++q) flagged[size_t(order[size_t(q)])] = 1;
    }
  }
  for (int64_t i = 0; i < n; ++i) {
    if (!flagged[size_t(i)]) continue;
    const int64_t g = labels[size_t(i)];
    int64_t argmax = 0, other = g == 0 ? 1 : 0;
    for (int64_t j = 0; j < k; ++j) {
      if (p(i, j) > p(i, argmax)) argmax = j;
      if (j != g && p(i, j) > p(i, other)) other = j;
    }
    if (o.drop_agreeing && argmax == g) continue;
    r.issues.push_back({.index = i, .given = g, .suggested = other, .score = p(i, g)});
  }
  std::stable_sort(r.issues.begin(), r.issues.end(),
                   [](const LabelIssue& a, const LabelIssue& b) { return a.score < b.score; });
  return r;
}

std::string summary(const ConfidentLearningResult& r, const std::vector<std::string>& classes, int64_t n) {
  const int64_t k = r.num_classes;
  auto name = [&](int64_t j) {
    std::string s = size_t(j) < classes.size() ? classes[size_t(j)] : std::to_string(j);
    return s.size() > 10 ? s.substr(0, 10) : s;
  };
  std::ostringstream os;
  char buf[64];
  double off = 0;
  for (int64_t i = 0; i < k; ++i)
    for (int64_t j = 0; j < k; ++j)
      if (i != j) off += r.joint[size_t(i * k + j)];
  std::snprintf(buf, sizeof buf, "%.1f%%", 100.0 * off);
  os << r.issues.size() << " likely label errors out of " << n << " examples; estimated noise rate " << buf << "\n";
  os << "\nper-class thresholds (mean self-confidence):\n";
  for (int64_t j = 0; j < k; ++j) {
    std::snprintf(buf, sizeof buf, "%.3f", r.thresholds[size_t(j)]);
    os << "  " << name(j) << std::string(12 - std::min<size_t>(12, name(j).size()), ' ') << buf << "\n";
  }
  os << "\nestimated noise matrix P(given label = row | true label = column), percent:\n" << std::string(12, ' ');
  for (int64_t j = 0; j < k; ++j) {
    std::snprintf(buf, sizeof buf, "%11s", name(j).c_str());
    os << buf;
  }
  os << "\n";
  for (int64_t i = 0; i < k; ++i) {
    std::snprintf(buf, sizeof buf, "%-12s", name(i).c_str());
    os << buf;
    for (int64_t j = 0; j < k; ++j) {
      std::snprintf(buf, sizeof buf, "%11.1f", 100.0 * r.noise_matrix[size_t(i * k + j)]);
      os << buf;
    }
    os << "\n";
  }
  return os.str();
}

void write_issues_csv(const std::string& path, const std::vector<LabelIssue>& issues,
                      const std::vector<std::string>& names) {
  std::string out = names.empty() ? "index,given_label,suggested_label,score\n"
                                  : "index,given_label,suggested_label,score,given_name,suggested_name\n";
  auto quoted = [](const std::string& s) {
    std::string q = "\"";
    for (char c : s) q += c == '"' ? std::string("\"\"") : std::string(1, c);
    return q + "\"";
  };
  char buf[128];
  for (const auto& i : issues) {
    std::snprintf(buf, sizeof buf, "%lld,%lld,%lld,%.6g", (long long)i.index, (long long)i.given,
                  (long long)i.suggested, i.score);
    out += buf;
    if (!names.empty()) {
      auto nm = [&](int64_t c) { return size_t(c) < names.size() ? names[size_t(c)] : std::to_string(c); };
      out += "," + quoted(nm(i.given)) + "," + quoted(nm(i.suggested));
    }
    out += "\n";
  }
  io::write_file_atomic(path, out);
}

}  // namespace loom::dataquality
