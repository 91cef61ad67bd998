// Confident learning (loom/dataquality): the algorithm on hand-made probabilities, on a synthetic problem with
// planted label errors found through K-fold out-of-sample probabilities, and pseudo-labelling.
#include <gtest/gtest.h>

#include <cmath>
#include <cstdio>
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
  EXPECT_EQ(r.num_label_issues, 2);
  // cleanlab's default filter finds the same two here.
  auto nr = find_label_issues(p, y, 2, {.filter = Filter::PruneByNoiseRate});
  ASSERT_EQ(nr.issues.size(), 2u);
  EXPECT_EQ(nr.issues[0].index, 5);
  EXPECT_EQ(nr.issues[1].index, 2);
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
  // The default filter: precise, and it finds most of them (the uncalibrated count is a little low here).
  const auto lsc = find_label_issues(cv.probs, labels, 3);
  int64_t lsc_hit = 0;
  for (const auto& i : lsc.issues) lsc_hit += b.planted.count(i.index);
  EXPECT_GE(double(lsc_hit) / double(std::max<size_t>(1, lsc.issues.size())), 0.9) << lsc.issues.size() << " flagged";
  EXPECT_GE(double(lsc_hit) / double(b.planted.size()), 0.75);
  // cleanlab's default, prune_by_noise_rate: both >= 0.9 on this easy problem.
  auto r = find_label_issues(cv.probs, labels, 3, {.filter = Filter::PruneByNoiseRate});
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

// What a model trained on noisy labels says about a 4-class problem whose classes 0 and 1 look alike (as
// Fashion-MNIST's shirts and T-shirts): 20% of the labels moved to a uniformly chosen other class. The
// calibrated joint counts the model's own 0/1 confusion as noise, so prune_by_noise_rate flags more; the
// num_label_issues least self-confident examples (audit-labels' default) are more precise, >= 0.8.
TEST(ConfidentLearning, FiltersOnConfusableClassesWithUniformNoise) {
  const int64_t n = 4000, k = 4;
  Generator g(5);
  std::vector<double> probs;
  std::vector<int64_t> labels;
  std::set<int64_t> flipped;
  for (int64_t i = 0; i < n; ++i) {
    const int64_t c = i % k;
    double logit[4];
    for (int64_t j = 0; j < k; ++j) logit[j] = g.next_normal();
    logit[c] += 5.0;
    if (c < 2) logit[1 - c] += 3.0 + 1.0 * g.next_normal();  // the look-alike class
    double z = 0;
    for (double& v : logit) z += (v = std::exp(v));
    for (double v : logit) probs.push_back(0.85 * v / z + 0.15 / double(k));  // smoothed by the noisy labels
    int64_t y = c;
    if (g.next_double() < 0.2) y = (c + 1 + int64_t(g.next_u64() % 3)) % k, flipped.insert(i);
    labels.push_back(y);
  }
  auto score = [&](Filter f) {
    const auto r = find_label_issues(probs, labels, k, {.filter = f});
    int64_t hit = 0;
    for (const auto& i : r.issues) hit += flipped.count(i.index);
    return std::pair{double(hit) / double(std::max<size_t>(1, r.issues.size())), double(hit) / double(flipped.size())};
  };
  const auto [p_lsc, r_lsc] = score(Filter::LowSelfConfidence);
  const auto [p_nr, r_nr] = score(Filter::PruneByNoiseRate);
  const auto [p_cl, r_cl] = score(Filter::ConfidentLearning);
  const auto [p_both, r_both] = score(Filter::Both);
  std::printf("precision / recall: low_self_confidence %.3f / %.3f, prune_by_noise_rate %.3f / %.3f, "
              "confident_learning %.3f / %.3f, both %.3f / %.3f\n", p_lsc, r_lsc, p_nr, r_nr, p_cl, r_cl, p_both, r_both);
  EXPECT_GE(p_lsc, 0.8);
  EXPECT_GE(r_lsc, 0.7);
  EXPECT_GT(p_lsc, p_nr);
  EXPECT_LE(r_both, r_nr + 1e-12);  // an intersection of prune_by_noise_rate's set
  EXPECT_GE(r_nr, 0.7);
  EXPECT_EQ(parse_filter("low_self_confidence"), Filter::LowSelfConfidence);
  EXPECT_EQ(filter_name(parse_filter("prune_by_noise_rate")), "prune_by_noise_rate");
  EXPECT_THROW(parse_filter("magic"), Error);
}

TEST(Autolabel, PseudoLabelsAreAccurateAndLabelledOnesKept) {
  manual_seed(0);
  Blobs b = make_blobs(300, 0.0, 3);
  auto ds = std::make_shared<data::TensorDataset>(b.x, b.y_true);
  const std::vector<int64_t> labelled = {0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11};
  std::vector<int64_t> truth = dataset_labels(ds);
  std::vector<AutolabelRound> seen;
  auto r = autolabel(ds, labelled, small_mlp,
                     {.threshold = 0.9, .rounds = 2, .class_balanced = true, .average_rounds = true,
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

TEST(Augmentation, ShiftsAndMirrorsReproduciblyWithoutTouchingTheData) {
  // One 1x5x5 image with a single bright pixel at (2, 2), 64 copies.
  Tensor img = zeros({64, 1, 5, 5});
  std::vector<double> v = img.tolist();
  for (int64_t s = 0; s < 64; ++s) v[size_t(s * 25 + 2 * 5 + 2)] = 1.0;
  auto base = std::make_shared<data::TensorDataset>(tensor(v, {64, 1, 5, 5}), zeros({64}, {.dtype = DType::i64}));
  AugmentedDataset aug(base, {.max_shift = 1, .hflip = true, .fill = {-0.5}}, 3);
  std::vector<int64_t> idx(64);
  std::iota(idx.begin(), idx.end(), 0);
  const std::vector<double> a = aug.get_batch(idx).data.tolist();
  std::set<int64_t> where;
  for (int64_t s = 0; s < 64; ++s) {
    int64_t bright = -1, filled = 0;
    for (int64_t q = 0; q < 25; ++q) {
      if (a[size_t(s * 25 + q)] == 1.0) bright = q;
      filled += a[size_t(s * 25 + q)] == -0.5;
    }
    ASSERT_GE(bright, 0) << "sample " << s;  // a 1-pixel shift keeps the centre pixel inside
    EXPECT_LE(std::abs(bright / 5 - 2), 1);
    EXPECT_LE(std::abs(bright % 5 - 2), 1);
    where.insert(bright);
    EXPECT_TRUE(filled == 0 || filled == 5 || filled == 9) << filled;  // a shifted-in row and/or column
  }
  EXPECT_GE(where.size(), 6u);                                  // the shifts vary
  EXPECT_EQ(aug.get_batch(idx).data.tolist(), a);               // same epoch: the same batch
  EXPECT_EQ(base->data().tolist(), v);                          // the base data is untouched
  aug.set_epoch(1);
  EXPECT_NE(aug.get_batch(idx).data.tolist(), a);               // another epoch: other shifts
  EXPECT_EQ(aug.get(5).data.tolist(), std::vector<double>(aug.get_batch(std::vector<int64_t>{5}).data.tolist()));
}

TEST(Autolabel, RejectsBadOptions) {
  auto ds = std::make_shared<data::TensorDataset>(zeros({4, 2}), tensor(std::vector<int64_t>{0, 1, 2, 0}, {4}));
  EXPECT_THROW(autolabel(ds, {}, small_mlp, {}), Error);
  EXPECT_THROW(autolabel(ds, {9}, small_mlp, {}), Error);
  EXPECT_THROW(autolabel(ds, {0}, small_mlp, {.threshold = 1.5}), Error);
}
