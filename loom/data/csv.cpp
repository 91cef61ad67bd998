#include "loom/data/csv.h"

#include <algorithm>
#include <charconv>
#include <cmath>
#include <limits>
#include <map>

#include "loom/data/file_util.h"
#include "loom/ops/creation.h"
#include "loom/ops/index.h"

namespace loom::data {

namespace {

// Splits RFC 4180 records out of the text one at a time, keeping the line each record starts on.
class RecordReader {
 public:
  RecordReader(const std::string& text, const std::string& path, char delim) : s_(text), path_(path), delim_(delim) {}

  // False at the end of the text. Blank lines are skipped.
  bool next(std::vector<std::string>& fields, int64_t& line) {
    while (pos_ < s_.size() && (s_[pos_] == '\n' || s_[pos_] == '\r')) {
      if (s_[pos_] == '\n') ++line_;
      ++pos_;
    }
    if (pos_ >= s_.size()) return false;
    line = line_;
    fields.clear();
    std::string cur;
    bool quoted = false, was_quoted = false;
    for (;;) {
      if (pos_ >= s_.size()) {
        LOOM_CHECK(!quoted, path_, ":", line, ": unterminated quoted field");
        break;
      }
      const char c = s_[pos_++];
      if (quoted) {
        if (c == '"') {
          if (pos_ < s_.size() && s_[pos_] == '"') { cur += '"'; ++pos_; }
          else quoted = false;
        } else {
          if (c == '\n') ++line_;
          cur += c;
        }
      } else if (c == '"' && !was_quoted && trim(cur).empty()) {
        quoted = was_quoted = true;
        cur.clear();
      } else if (c == delim_) {
        fields.push_back(was_quoted ? cur : trim(cur));
        cur.clear();
        was_quoted = false;
      } else if (c == '\n' || c == '\r') {
        if (c == '\n') ++line_;
        break;
      } else {
        cur += c;
      }
    }
    fields.push_back(was_quoted ? cur : trim(cur));
    return true;
  }

  static std::string trim(const std::string& s) {
    size_t b = 0, e = s.size();
    while (b < e && (s[b] == ' ' || s[b] == '\t')) ++b;
    while (e > b && (s[e - 1] == ' ' || s[e - 1] == '\t')) --e;
    return s.substr(b, e - b);
  }

 private:
  const std::string& s_;
  const std::string& path_;
  char delim_;
  size_t pos_ = 0;
  int64_t line_ = 1;
};

constexpr double kMaxF32 = double(std::numeric_limits<float>::max());

bool parse_double(const std::string& s, double& v) {
  const char* b = s.data();
  const char* e = b + s.size();
  if (b != e && *b == '+') ++b;  // from_chars refuses a leading '+', which spreadsheets write
  auto [p, ec] = std::from_chars(b, e, v);
  return ec == std::errc() && p == e && b != e;
}

}  // namespace

CsvTable read_csv(const std::string& path, const CsvOptions& o) {
  LOOM_CHECK(!o.target.empty(), path, ": read_csv needs the name of the target column (.target)");
  const std::string text = read_file(path);
  RecordReader rd(text, path, o.delimiter);
  std::vector<std::string> header, fields;
  int64_t line = 0;
  LOOM_CHECK(rd.next(header, line), path, ": the CSV file is empty (a header row is required)");
  if (!header.empty() && header[0].rfind("\xEF\xBB\xBF", 0) == 0) header[0] = header[0].substr(3);  // UTF-8 BOM
  std::map<std::string, size_t> col;
  for (size_t i = 0; i < header.size(); ++i) {
    LOOM_CHECK(col.emplace(header[i], i).second, path, ":", line, ": column name '", header[i], "' appears twice");
  }
  auto column = [&](const std::string& name) {
    auto it = col.find(name);
    if (it == col.end()) {
      std::string names;
      for (const auto& h : header) names += (names.empty() ? "" : ", ") + h;
      LOOM_FAIL(path, ": no column named '", name, "' (columns: ", names, ")");
    }
    return it->second;
  };
  const size_t tcol = column(o.target);
  LOOM_CHECK(header.size() >= 2 || !o.features.empty(), path, ": has only the target column '", o.target,
             "'; at least one feature column is needed besides it");
  std::vector<size_t> fcols;
  CsvTable t;
  if (o.features.empty()) {
    for (size_t i = 0; i < header.size(); ++i)
      if (i != tcol) { fcols.push_back(i); t.feature_names.push_back(header[i]); }
  } else {
    for (const auto& f : o.features) {
      LOOM_CHECK(f != o.target, path, ": column '", f, "' is both the target and a feature");
      fcols.push_back(column(f));
      t.feature_names.push_back(f);
    }
  }
  std::vector<float> x;
  std::vector<double> yv;
  std::vector<std::string> ys;
  int64_t rows = 0;
  while (rd.next(fields, line)) {
    LOOM_CHECK(fields.size() == header.size(), path, ":", line, ": row has ", fields.size(),
               " fields but the header has ", header.size());
    for (size_t i = 0; i < fcols.size(); ++i) {
      double v;
      const std::string& s = fields[fcols[i]];
      LOOM_CHECK(parse_double(s, v) && std::isfinite(v), path, ":", line, ": column '", header[fcols[i]],
                 "' value '", s, "' is not a finite number");
      // Features are f32: a larger value would become inf (and converting it is undefined behaviour).
      LOOM_CHECK(std::abs(v) <= kMaxF32, path, ":", line, ": column '", header[fcols[i]], "' value '", s,
                 "' is outside the float32 range (|x| <= 3.4e38)");
      x.push_back(float(v));
    }
    const std::string& ts = fields[tcol];
    double v;
    if (o.classification) ys.push_back(ts);
    else {
      LOOM_CHECK(parse_double(ts, v) && std::isfinite(v), path, ":", line, ": target column '", o.target, "' value '",
                 ts, "' is not a finite number");
      LOOM_CHECK(std::abs(v) <= kMaxF32, path, ":", line, ": target column '", o.target, "' value '", ts,
                 "' is outside the float32 range (|x| <= 3.4e38)");
      yv.push_back(v);
    }
    ++rows;
  }
  LOOM_CHECK(rows > 0, path, ": the CSV file has a header but no data rows");
  const int64_t nf = int64_t(fcols.size());
  t.features = nf ? tensor(x, {rows, nf}) : zeros({rows, 0});
  if (!o.classification) {
    t.target = tensor(std::vector<float>(yv.begin(), yv.end()), {rows, 1});
    return t;
  }
  // Integer labels are used as given; anything else is named, and names are numbered in sorted order.
  std::vector<int64_t> labels(static_cast<size_t>(rows));
  bool integral = true;
  for (size_t i = 0; i < ys.size() && integral; ++i) {
    auto [p, ec] = std::from_chars(ys[i].data(), ys[i].data() + ys[i].size(), labels[i]);
    integral = ec == std::errc() && p == ys[i].data() + ys[i].size() && labels[i] >= 0;
  }
  if (!integral) {
    t.classes = ys;
    std::sort(t.classes.begin(), t.classes.end());
    t.classes.erase(std::unique(t.classes.begin(), t.classes.end()), t.classes.end());
    for (size_t i = 0; i < ys.size(); ++i)
      labels[i] = std::lower_bound(t.classes.begin(), t.classes.end(), ys[i]) - t.classes.begin();
  }
  t.target = tensor(labels, {rows});
  return t;
}

Standardizer Standardizer::fit(const Tensor& x) {
  LOOM_CHECK(x.defined() && x.dim() == 2 && x.size(0) > 0, "Standardizer::fit: expects a non-empty (N, F) matrix, got ",
             x.defined() ? x.shape() : Shape{});
  const Tensor xc = x.to(DType::f32).contiguous();
  const int64_t n = xc.size(0), f = xc.size(1);
  const float* p = xc.data<float>();
  std::vector<double> mean(size_t(f), 0.0), var(size_t(f), 0.0);
  for (int64_t i = 0; i < n; ++i)
    for (int64_t j = 0; j < f; ++j) mean[size_t(j)] += p[i * f + j];
  for (auto& m : mean) m /= double(n);
  for (int64_t i = 0; i < n; ++i)
    for (int64_t j = 0; j < f; ++j) {
      const double d = p[i * f + j] - mean[size_t(j)];
      var[size_t(j)] += d * d;
    }
  std::vector<double> sd(static_cast<size_t>(f));
  for (int64_t j = 0; j < f; ++j) {
    sd[size_t(j)] = std::sqrt(var[size_t(j)] / double(n));
    if (sd[size_t(j)] == 0.0) sd[size_t(j)] = 1.0;
  }
  return {tensor(mean, {f}), tensor(sd, {f})};
}

Tensor Standardizer::apply(const Tensor& x) const {
  LOOM_CHECK(x.dim() >= 1 && x.size(-1) == mean.size(0), "Standardizer: expects ", mean.size(0),
             " columns, got shape ", x.shape());
  return (x - mean) / std;
}

Tensor Standardizer::inverse(const Tensor& x) const {
  LOOM_CHECK(x.dim() >= 1 && x.size(-1) == mean.size(0), "Standardizer: expects ", mean.size(0),
             " columns, got shape ", x.shape());
  return x * std + mean;
}

CsvSplits load_csv(const std::string& path, const CsvOptions& o) {
  LOOM_CHECK(o.test_fraction >= 0.0 && o.test_fraction < 1.0, path, ": test_fraction must be in [0, 1), got ",
             o.test_fraction);
  LOOM_CHECK(!(o.standardize_target && o.classification), path, ": standardize_target applies to regression only");
  CsvTable t = read_csv(path, o);
  const int64_t n = t.features.size(0);
  const int64_t n_test = int64_t(std::llround(double(n) * o.test_fraction));
  LOOM_CHECK(n - n_test > 0, path, ": ", n, " rows leave nothing to train on with test_fraction ", o.test_fraction);
  // A test split of 0 rows would report MSE 0 / R^2 0 as if measured.
  LOOM_CHECK(o.test_fraction == 0.0 || n_test > 0, path, ": has ", n, " data row(s), too few to hold out a test row "
             "with test_fraction ", o.test_fraction, " (at least ", int64_t(std::ceil(0.5 / o.test_fraction)),
             " rows are needed)");
  Generator gen(o.seed);
  Tensor perm = randperm(n, {.dtype = DType::i64}, &gen);
  Tensor tr = perm.slice(0, 0, n - n_test).contiguous(), te = perm.slice(0, n - n_test, n).contiguous();
  Tensor xtr = index_select(t.features, 0, tr), xte = index_select(t.features, 0, te);
  Tensor ytr = index_select(t.target, 0, tr), yte = index_select(t.target, 0, te);
  CsvSplits s;
  s.feature_names = t.feature_names;
  s.classes = t.classes;
  if (o.standardize && t.features.size(1) > 0) {
    s.scaler = Standardizer::fit(xtr);
    xtr = s.scaler->apply(xtr);
    xte = s.scaler->apply(xte);
  }
  if (o.standardize_target) {
    s.target_scaler = Standardizer::fit(ytr);
    ytr = s.target_scaler->apply(ytr);
    yte = s.target_scaler->apply(yte);
  }
  s.train = std::make_shared<TensorDataset>(xtr, ytr);
  s.test = std::make_shared<TensorDataset>(xte, yte);
  return s;
}

}  // namespace loom::data
