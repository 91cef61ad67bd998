// FixMatch consistency training (loom/dataquality/fixmatch, strong_augment): the strong augmentation's shapes,
// ranges and reproducibility, the masked pseudo-label loss against a direct computation, and a tiny end-to-end
// run on synthetic bar images (baseline and FixMatch windows, labels kept, reproducible).
#include <gtest/gtest.h>

#include <cmath>
#include <numeric>
#include <set>

#include "loom/dataquality/fixmatch.h"
#include "loom/loom.h"

using namespace loom;
using namespace loom::dataquality;

namespace {

std::vector<int64_t> iota_ids(int64_t n, int64_t from = 0) {
  std::vector<int64_t> v(static_cast<size_t>(n));
  std::iota(v.begin(), v.end(), from);
  return v;
}

// n images (1, 8, 8) of a normalised-looking range [-1, 3]: class 0 a vertical bar, class 1 a horizontal bar,
// each at a random position, plus a little noise.
std::shared_ptr<data::TensorDataset> bars(int64_t n, uint64_t seed) {
  Generator g(seed);
  std::vector<double> x(size_t(n * 64), -1.0);
  std::vector<int64_t> y(static_cast<size_t>(n));
  for (int64_t s = 0; s < n; ++s) {
    y[size_t(s)] = s % 2;
    const int64_t at = 1 + int64_t(g.next_u64() % 6);
    for (int64_t k = 1; k < 7; ++k) x[size_t(s * 64 + (y[size_t(s)] ? at * 8 + k : k * 8 + at))] = 3.0;
    for (int64_t q = 0; q < 64; ++q) x[size_t(s * 64 + q)] += 0.2 * g.next_normal();
  }
  return std::make_shared<data::TensorDataset>(tensor(x, {n, 1, 8, 8}), tensor(y, {n}));
}

std::shared_ptr<nn::Module> tiny_net() {
  return std::make_shared<nn::Sequential>(nn::Flatten(), nn::Linear({.in = 64, .out = 16}), nn::ReLU(),
                                          nn::Linear({.in = 16, .out = 2}));
}

}  // namespace

TEST(StrongAugment, ShapeRangeAndReproducibility) {
  // RGB 6x6 images whose channels have different black/white values (one channel inverted: white < black).
  manual_seed(1);
  const std::vector<double> black = {-1.0, 0.0, 2.0}, white = {1.0, 4.0, -2.0};
  Tensor x = rand({16, 3, 6, 6});
  std::vector<double> v = x.tolist();
  for (size_t i = 0; i < v.size(); ++i) {
    const size_t ch = (i / 36) % 3;
    v[i] = black[ch] + v[i] * (white[ch] - black[ch]);
  }
  x = tensor(v, {16, 3, 6, 6});
  const std::vector<double> before = x.tolist();
  const StrongAugmentation a{.ops = 3, .max_shift = 2, .cutout = 0.5, .black = black, .white = white};
  const std::vector<int64_t> ids = iota_ids(16, 100);
  const Tensor s1 = strong_augment(x, a, 7, 3, ids);
  EXPECT_EQ(s1.shape(), x.shape());
  EXPECT_EQ(s1.dtype(), DType::f32);
  EXPECT_EQ(x.tolist(), before);  // the input is untouched
  const std::vector<double> o = s1.tolist();
  for (size_t i = 0; i < o.size(); ++i) {
    const size_t ch = (i / 36) % 3;
    EXPECT_GE(o[i], std::min(black[ch], white[ch]) - 1e-5) << i;
    EXPECT_LE(o[i], std::max(black[ch], white[ch]) + 1e-5) << i;
  }
  EXPECT_EQ(strong_augment(x, a, 7, 3, ids).tolist(), o);     // same seed, epoch and ids: the same views
  EXPECT_NE(strong_augment(x, a, 7, 4, ids).tolist(), o);     // another epoch: other views
  EXPECT_NE(strong_augment(x, a, 8, 3, ids).tolist(), o);     // another seed: other views
  // A sample's view depends on its id, not its position in the batch.
  const std::vector<int64_t> one = {ids[5]};
  EXPECT_EQ(strong_augment(x.slice(0, 5, 6), a, 7, 3, one).tolist(), s1.slice(0, 5, 6).tolist());
  // No operations and no cutout: the images come back unchanged (they are inside the range already).
  const Tensor same = strong_augment(x, {.ops = 0, .cutout = 0, .black = black, .white = white}, 7, 3, ids);
  const std::vector<double> sv = same.tolist();
  for (size_t i = 0; i < v.size(); ++i) EXPECT_NEAR(sv[i], v[i], 1e-5);
}

TEST(StrongAugment, CutoutIsAGreySquareInsideTheImage) {
  // Black 1x10x10 images, cutout only: a square of mid-grey (0.5 between black 0 and white 2 = 1.0), side 5 at
  // most (it may hang over the edge), at varying places.
  const Tensor x = zeros({32, 1, 10, 10});
  const Tensor s = strong_augment(x, {.ops = 0, .cutout = 0.5, .black = {0.0}, .white = {2.0}}, 1, 0, iota_ids(32));
  const std::vector<double> v = s.tolist();
  std::set<int64_t> first;
  for (int64_t n = 0; n < 32; ++n) {
    int64_t grey = 0, at = -1;
    for (int64_t q = 0; q < 100; ++q) {
      const double p = v[size_t(n * 100 + q)];
      EXPECT_TRUE(p == 0.0 || p == 1.0) << p;
      if (p == 1.0 && at < 0) at = q;
      grey += p == 1.0;
    }
    EXPECT_GE(grey, 9);   // at least a 3x3 corner of the 5x5 square
    EXPECT_LE(grey, 25);
    first.insert(at);
  }
  EXPECT_GE(first.size(), 8u);
}

TEST(StrongAugment, RejectsBadInput) {
  const std::vector<int64_t> ids = iota_ids(2);
  EXPECT_THROW(strong_augment(zeros({2, 4}), {}, 0, 0, ids), Error);                       // not images
  EXPECT_THROW(strong_augment(zeros({2, 3, 4, 4}), {.black = {0, 0}, .white = {1, 1}}, 0, 0, ids), Error);
  EXPECT_THROW(strong_augment(zeros({2, 1, 4, 4}), {.black = {1}, .white = {1}}, 0, 0, ids), Error);
  EXPECT_THROW(strong_augment(zeros({3, 1, 4, 4}), {}, 0, 0, ids), Error);                 // 2 ids, 3 images
  EXPECT_THROW(strong_augment(zeros({2, 1, 4, 4}), {.cutout = 1.5}, 0, 0, ids), Error);
}

TEST(WeakAugment, AugmentBatchIsWhatTheAugmentedDatasetReturns) {
  auto ds = bars(8, 2);
  const Augmentation w{.max_shift = 2, .hflip = true, .fill = {-1.0}};
  AugmentedDataset aug(ds, w, 5);
  aug.set_epoch(3);
  const std::vector<int64_t> ids = {6, 1, 3};
  EXPECT_EQ(augment_batch(ds->get_batch(ids).data, w, 5, 3, ids).tolist(), aug.get_batch(ids).data.tolist());
}

TEST(MaskedPseudoLabelLoss, MatchesADirectComputation) {
  const std::vector<double> z = {2.0, 0.5, -1.0, 0.0, 1.0, 3.0, 0.3, 0.3, 0.3, -2.0, 4.0, 1.0};
  const Tensor logits = tensor(z, {4, 3});
  const Tensor pseudo = tensor(std::vector<int64_t>{0, 2, 1, 1}, {4});
  const Tensor mask = tensor({1.0, 1.0, 0.0, 1.0}, {4});
  // By hand: CE of row i = logsumexp(z_i) - z_i[pseudo_i]; rows 0, 1 and 3 count; divided by the batch of 4.
  auto ce = [&](int64_t i, int64_t c) {
    double s = 0;
    for (int64_t k = 0; k < 3; ++k) s += std::exp(z[size_t(i * 3 + k)]);
    return std::log(s) - z[size_t(i * 3 + c)];
  };
  const double expect = (ce(0, 0) + ce(1, 2) + ce(3, 1)) / 4;
  EXPECT_NEAR(masked_pseudo_label_loss(logits, pseudo, mask, 4).item(), expect, 1e-6);
  // Only the masked rows with a mask of ones and the same denominator: the same value (what training does).
  const Tensor rows = tensor(std::vector<int64_t>{0, 1, 3}, {3});
  EXPECT_NEAR(masked_pseudo_label_loss(logits.index_select(0, rows), pseudo.index_select(0, rows), ones({3}), 4).item(),
              expect, 1e-6);
  // Gradient of a masked row is zero; of a kept row, (softmax - onehot) / 4.
  Tensor l = tensor(z, {4, 3}).requires_grad_();
  masked_pseudo_label_loss(l, pseudo, mask, 4).backward();
  const std::vector<double> gr = l.grad().tolist();
  for (int64_t k = 0; k < 3; ++k) EXPECT_EQ(gr[size_t(6 + k)], 0.0);
  double s0 = 0;
  for (int64_t k = 0; k < 3; ++k) s0 += std::exp(z[size_t(k)]);
  EXPECT_NEAR(gr[0], (std::exp(z[0]) / s0 - 1) / 4, 1e-6);
  EXPECT_THROW(masked_pseudo_label_loss(logits, pseudo, ones({3}), 4), Error);
  EXPECT_THROW(masked_pseudo_label_loss(logits, pseudo, mask, 0), Error);
}

TEST(FixMatch, TinyRunReportsBothRunsKeepsLabelsAndIsReproducible) {
  auto ds = bars(240, 3);
  auto test = bars(100, 4);
  const std::vector<int64_t> labelled = {0, 1, 2, 3, 4, 5};
  const std::vector<int64_t> truth = dataset_labels(ds);
  FixMatchOptions o{.threshold = 0.8, .steps = 40, .batch_size = 6, .mu = 4, .lr = 1e-2, .ema_decay = 0.99,
                    .report_every = 20, .seed = 3, .weak = {.max_shift = 1, .hflip = true, .fill = {-1.0}},
                    .strong = {.ops = 2, .max_shift = 2, .black = {-1.0}, .white = {3.0}}};
  int64_t calls = 0;
  o.on_round = [&](const FixMatchRound&) { ++calls; };
  manual_seed(0);
  const FixMatchResult r = fixmatch(ds, labelled, tiny_net, o, test, &truth);
  ASSERT_EQ(r.rounds.size(), 4u);  // baseline at 20 and 40, then FixMatch at 20 and 40
  EXPECT_EQ(calls, 4);
  EXPECT_TRUE(r.rounds[0].baseline && r.rounds[1].baseline && !r.rounds[2].baseline && !r.rounds[3].baseline);
  EXPECT_EQ(r.rounds[0].unlabelled_seen, 0);
  EXPECT_EQ(r.rounds[3].step, 40);
  EXPECT_EQ(r.rounds[3].unlabelled_seen, 20 * 24);
  int64_t above = 0;
  for (const auto& w : r.rounds) above += w.above_threshold;
  EXPECT_GT(above, 0);
  EXPECT_GE(r.rounds[3].pseudo_accuracy, 0.8);
  EXPECT_EQ(r.baseline_test_accuracy, r.rounds[1].test_accuracy);
  EXPECT_EQ(r.test_accuracy, r.rounds[3].test_accuracy);
  EXPECT_GE(r.test_accuracy, 0.8);  // the bars are easy: a model that learned nothing scores ~0.5
  ASSERT_EQ(r.labels.size(), 240u);
  for (int64_t i : labelled) EXPECT_EQ(r.source[size_t(i)], LabelSource::Given);
  for (size_t i = 6; i < 240; ++i) {
    EXPECT_NE(r.source[i], LabelSource::Given);
    EXPECT_EQ(r.source[i] == LabelSource::Pseudo, r.confidence[i] >= 0.8);
  }
  manual_seed(0);
  const FixMatchResult again = fixmatch(ds, labelled, tiny_net, o, test, &truth);
  EXPECT_EQ(again.labels, r.labels);
  EXPECT_EQ(again.confidence, r.confidence);
  EXPECT_EQ(again.test_accuracy, r.test_accuracy);
}

TEST(FixMatch, DistributionAlignmentAndCosineScheduleKeepPseudoLabelsAccurate) {
  auto ds = bars(240, 5);
  const std::vector<int64_t> truth = dataset_labels(ds);
  const FixMatchOptions o{.threshold = 0.8, .steps = 40, .batch_size = 6, .mu = 4, .lr = 1e-2, .cosine_lr = true,
                          .report_every = 40,
                          .seed = 1, .weak = {.max_shift = 1, .fill = {-1.0}},
                          .strong = {.max_shift = 2, .black = {-1.0}, .white = {3.0}},
                          .distribution_alignment = true, .baseline = false};
  manual_seed(0);
  const FixMatchResult r = fixmatch(ds, {0, 1, 2, 3, 4, 5}, tiny_net, o, nullptr, &truth);
  ASSERT_EQ(r.rounds.size(), 1u);  // no baseline asked for
  EXPECT_FALSE(r.rounds[0].baseline);
  EXPECT_TRUE(std::isnan(r.baseline_test_accuracy));
  EXPECT_GT(r.rounds[0].above_threshold, 0);
  EXPECT_GE(r.rounds[0].pseudo_accuracy, 0.8);
  // Labelled samples of a class the model cannot output are an error, not an out-of-range read.
  auto bad = std::make_shared<data::TensorDataset>(zeros({4, 1, 8, 8}), tensor(std::vector<int64_t>{0, 5, 1, 0}, {4}));
  EXPECT_THROW(fixmatch(bad, {0, 1}, tiny_net, {.steps = 2, .batch_size = 2, .mu = 1, .distribution_alignment = true,
                                                .baseline = false}),
               Error);
}

TEST(FixMatch, RejectsBadOptions) {
  auto ds = bars(8, 1);
  EXPECT_THROW(fixmatch(ds, {}, tiny_net, {}), Error);
  EXPECT_THROW(fixmatch(ds, {9}, tiny_net, {}), Error);
  EXPECT_THROW(fixmatch(ds, {0}, tiny_net, {.threshold = 0}), Error);
  EXPECT_THROW(fixmatch(ds, {0}, tiny_net, {.mu = 0}), Error);
  EXPECT_THROW(fixmatch(ds, {0}, tiny_net, {.ema_decay = 1.0}), Error);
}
