// Confident learning (loom/dataquality): the algorithm on hand-made probabilities, on a synthetic problem with
// planted label errors found through K-fold out-of-sample probabilities, and pseudo-labelling.
#include <gtest/gtest.h>

#include <numeric>
#include <set>

#include "loom/dataquality/autolabel.h"
#include "loom/dataquality/confident_learning.h"
#include "loom/dataquality/cross_val.h"
#include "loom/loom.h"

using namespace loom;
using namespace loom::dataquality;

namespace {

// Three well-separated Gaussian blobs in 2-d; labels flipped at `planted` indices.
struct Blobs {
  Tensor x, y_true, y_noisy;
  std::set<int64_t> planted;
};

Blobs make_blobs(int64_t per_class, double flip_fraction, uint64_t seed) {
  Generator g(seed);
  const int64_t k = 3, n = per_class * k;
  const double centres[3][2] = {{0, 3}, {3, -2}, {-3, -2}};
  Tensor x = randn({n, 2}, {}, &g);
  std::vector<int64_t> y(static_cast<size_t>(n));
  std::vector<double> xv = x.tolist();
  for (int64_t i = 0; i < n; ++i) {
    y[size_t(i)] = i % k;
    xv[size_t(2 * i)] += centres[i % k][0], xv[size_t(2 * i + 1)] += centres[i % k][1];
  }
  Blobs b;
  b.x = tensor(xv, {n, 2});
  b.y_true = tensor(y, {n});
  std::vector<double> order = randperm(n, {.dtype = DType::i64}, &g).tolist();
  std::vector<int64_t> noisy = y;
  for (int64_t q = 0; q < int64_t(double(n) * flip_fraction); ++q) {
    const int64_t i = int64_t(order[size_t(q)]);
    noisy[size_t(i)] = (y[size_t(i)] + 1 + int64_t(randint(0, 2, {1}, {.dtype = DType::i64}, &g).item())) % k;
    b.planted.insert(i);
  }
  b.y_noisy = tensor(noisy, {n});
  return b;
}

std::shared_ptr<nn::Module> small_mlp() {
  return std::make_shared<nn::Sequential>(nn::Linear({.in = 2, .out = 16}), nn::ReLU(), nn::Linear({.in = 16, .out = 3}));
}

}  // namespace

TEST(ConfidentLearning, ThresholdsJointAndNoiseMatrixByHand) {
  // 2 classes, 6 examples. Thresholds: class 0 given to rows 0,1,2 (p0 = .9 .8 .2 -> mean .633);
  // class 1 given to rows 3,4,5 (p1 = .7 .9 .1 -> mean .567).
  const std::vector<double> p = {.9, .1, .8, .2, .2, .8, .3, .7, .1, .9, .9, .1};
  const std::vector<int64_t> y = {0, 0, 0, 1, 1, 1};
  auto r = find_label_issues(p, y, 2);
  EXPECT_NEAR(r.thresholds[0], (0.9 + 0.8 + 0.2) / 3, 1e-12);
  EXPECT_NEAR(r.thresholds[1], (0.7 + 0.9 + 0.1) / 3, 1e-12);
  // Row 2 (given 0, p1 = .8 >= .567) counts as (0, 1); row 5 (given 1, p0 = .9 >= .633) as (1, 0).
  EXPECT_EQ(r.confident_joint, (std::vector<int64_t>{2, 1, 1, 2}));
  EXPECT_EQ(r.calibrated_joint, (std::vector<int64_t>{2, 1, 1, 2}));
  EXPECT_NEAR(r.noise_matrix[0 * 2 + 1], 1.0 / 3, 1e-12);  // P(given 0 | true 1)
  EXPECT_NEAR(r.noise_matrix[0] + r.noise_matrix[2], 1.0, 1e-12);
  ASSERT_EQ(r.issues.size(), 2u);
  std::set<int64_t> found = {r.issues[0].index, r.issues[1].index};
  EXPECT_EQ(found, (std::set<int64_t>{2, 5}));
  EXPECT_EQ(r.issues[0].index, 5);  // self-confidence .1 ranks before .2
  EXPECT_EQ(r.issues[0].suggested, 0);
  EXPECT_NEAR(r.issues[0].score, 0.1, 1e-12);
}

TEST(ConfidentLearning, RoundPreservingRowTotals) {
  const std::vector<double> m = {0.4, 0.4, 0.2, 1.5, 1.5, 0.0, 2.6, 0.2, 0.2};
  const std::vector<int64_t> r = round_preserving_row_totals(m, 3);
  for (int64_t i = 0; i < 3; ++i) {
    double want = 0;
    int64_t got = 0;
    for (int64_t j = 0; j < 3; ++j) want += m[size_t(i * 3 + j)], got += r[size_t(i * 3 + j)];
    EXPECT_EQ(got, std::llround(want)) << "row " << i;
  }
}

TEST(ConfidentLearning, BadInputIsAClearError) {
  EXPECT_THROW(find_label_issues({0.5, 0.5}, {0, 1}, 2), Error);          // 2 labels need 4 values
  EXPECT_THROW(find_label_issues({0.5, 0.5, 0.5, 0.5}, {0, 2}, 2), Error);  // label out of range
  EXPECT_THROW(find_label_issues({0.5, NAN, 0.5, 0.5}, {0, 1}, 2), Error);
}

TEST(ConfidentLearning, FindsPlantedLabelErrorsThroughCrossValidation) {
  manual_seed(0);
  Blobs b = make_blobs(200, 0.1, 7);
  auto ds = std::make_shared<data::TensorDataset>(b.x, b.y_noisy);
  CrossValProbs cv = cross_val_probs(ds, small_mlp, {.folds = 4, .seed = 1, .training = {.epochs = 1, .min_steps = 150, .batch_size = 32, .lr = 1e-2}});
  ASSERT_EQ(cv.num_classes, 3);
  std::vector<int64_t> labels = dataset_labels(ds);
  auto r = find_label_issues(cv.probs, labels, 3);
  int64_t hit = 0;
  for (const auto& i : r.issues) hit += b.planted.count(i.index);
  const double precision = double(hit) / double(std::max<size_t>(1, r.issues.size()));
  const double recall = double(hit) / double(b.planted.size());
  EXPECT_GE(precision, 0.9) << r.issues.size() << " flagged";
  EXPECT_GE(recall, 0.9);
  // The suggested label of a planted error is its true label.
  int64_t right = 0;
  for (const auto& i : r.issues)
    if (b.planted.count(i.index)) right += i.suggested == int64_t(b.y_true[i.index].item());
  EXPECT_GE(double(right) / double(std::max<int64_t>(hit, 1)), 0.9);
  // The estimated noise (off-diagonal mass) is near the planted 10%.
  double off = 0;
  for (int64_t i = 0; i < 3; ++i)
    for (int64_t j = 0; j < 3; ++j) off += i != j ? r.joint[size_t(i * 3 + j)] : 0.0;
  EXPECT_NEAR(off, 0.1, 0.04);
  // Ranked: scores ascend.
  for (size_t i = 1; i < r.issues.size(); ++i) EXPECT_LE(r.issues[i - 1].score, r.issues[i].score);
}

TEST(Autolabel, PseudoLabelsAreAccurateAndLabelledOnesKept) {
  manual_seed(0);
  Blobs b = make_blobs(300, 0.0, 3);
  auto ds = std::make_shared<data::TensorDataset>(b.x, b.y_true);
  const std::vector<int64_t> labelled = {0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11};
  std::vector<int64_t> truth = dataset_labels(ds);
  std::vector<AutolabelRound> seen;
  auto r = autolabel(ds, labelled, small_mlp,
                     {.threshold = 0.9, .rounds = 2, .class_balanced = true,
                      .training = {.epochs = 1, .min_steps = 100, .batch_size = 32, .lr = 1e-2},
                      .on_round = [&](const AutolabelRound& x) { seen.push_back(x); }},
                     ds, &truth);
  ASSERT_EQ(r.rounds.size(), 3u);
  EXPECT_EQ(seen.size(), 3u);
  EXPECT_EQ(r.rounds[0].pseudo_labelled, 0);
  EXPECT_GT(r.rounds[1].pseudo_labelled, 100);
  EXPECT_GE(r.rounds[1].pseudo_accuracy, 0.95);
  EXPECT_GE(r.rounds.back().test_accuracy, 0.95);
  for (int64_t i : labelled) {
    EXPECT_EQ(r.labels[size_t(i)], truth[size_t(i)]);
    EXPECT_EQ(r.source[size_t(i)], LabelSource::Given);
    EXPECT_EQ(r.confidence[size_t(i)], 1.0);
  }
  int64_t pseudo = 0;
  for (size_t i = 0; i < r.labels.size(); ++i)
    if (r.source[i] == LabelSource::Pseudo) {
      ++pseudo;
      EXPECT_GE(r.confidence[i], 0.9);
    }
  EXPECT_GT(pseudo, 0);
}

TEST(Autolabel, RejectsBadOptions) {
  auto ds = std::make_shared<data::TensorDataset>(zeros({4, 2}), tensor(std::vector<int64_t>{0, 1, 2, 0}, {4}));
  EXPECT_THROW(autolabel(ds, {}, small_mlp, {}), Error);
  EXPECT_THROW(autolabel(ds, {9}, small_mlp, {}), Error);
  EXPECT_THROW(autolabel(ds, {0}, small_mlp, {.threshold = 1.5}), Error);
}
