// Metrics against values computed by hand, and their streaming (batch by batch) and state round trips.
#include <gtest/gtest.h>

#include "loom/loom.h"

using namespace loom;

namespace {

// 5 samples, 4 classes. Argmax per row: 1, 0, 3, 2, 1; labels: 1, 2, 3, 2, 0 -> 3 of 5 correct.
Tensor logits() {
  return tensor({0.1,  2.0, 0.3, -1.0,  //
                 1.5,  0.2, 1.4, 0.0,   //
                 0.0,  0.1, 0.2, 0.3,   //
                 -1.0, 0.5, 2.5, 0.4,   //
                 0.2,  0.9, 0.1, 0.8},
                {5, 4});
}
Tensor labels() { return tensor(std::vector<int64_t>{1, 2, 3, 2, 0}); }

}  // namespace

TEST(Metrics, AccuracyAndTopK) {
  EXPECT_DOUBLE_EQ(train::accuracy(logits(), labels()), 3.0 / 5.0);
  // Top-2: row 1's label 2 (1.4) is second -> hit; row 4's label 0 (0.2) is third -> miss.
  EXPECT_DOUBLE_EQ(train::accuracy(logits(), labels(), 2), 4.0 / 5.0);
  EXPECT_DOUBLE_EQ(train::accuracy(logits(), labels(), 4), 1.0);
  auto top3 = train::make_metric("top3_accuracy");
  EXPECT_EQ(top3->name(), "top3_accuracy");
  top3->update(logits(), labels());
  EXPECT_DOUBLE_EQ(top3->compute(), 1.0);  // row 4's label is third
}

TEST(Metrics, StreamingEqualsOneShotAndStateRoundTrips) {
  train::Accuracy acc;
  acc.update(logits().narrow(0, 0, 2), labels().narrow(0, 0, 2));  // 1 of 2
  acc.update(logits().narrow(0, 2, 3), labels().narrow(0, 2, 3));  // 2 of 3
  EXPECT_DOUBLE_EQ(acc.compute(), 0.6);
  train::Accuracy copy;
  copy.load_state(acc.state());
  EXPECT_DOUBLE_EQ(copy.compute(), 0.6);
  acc.reset();
  EXPECT_DOUBLE_EQ(acc.compute(), 0.0);
  train::MeanLoss ml;
  ml.add(2.0, 10);
  ml.add(1.0, 30);
  EXPECT_DOUBLE_EQ(ml.compute(), (20.0 + 30.0) / 40.0);
}

TEST(Metrics, ConfusionMatrixCountsAndRecall) {
  train::ConfusionMatrix cm(4);
  cm.update(logits(), labels());
  EXPECT_EQ(cm.at(1, 1), 1);
  EXPECT_EQ(cm.at(2, 0), 1);  // true 2 predicted 0 (row 1)
  EXPECT_EQ(cm.at(3, 3), 1);
  EXPECT_EQ(cm.at(2, 2), 1);
  EXPECT_EQ(cm.at(0, 1), 1);
  int64_t total = 0;
  for (int t = 0; t < 4; ++t)
    for (int p = 0; p < 4; ++p) total += cm.at(t, p);
  EXPECT_EQ(total, 5);
  EXPECT_DOUBLE_EQ(cm.compute(), 0.6);
  const std::vector<double> r = cm.recall();
  EXPECT_DOUBLE_EQ(r[0], 0.0);
  EXPECT_DOUBLE_EQ(r[1], 1.0);
  EXPECT_DOUBLE_EQ(r[2], 0.5);
  EXPECT_DOUBLE_EQ(r[3], 1.0);
  const std::string s = cm.to_string({"a", "b", "c", "d"});
  EXPECT_NE(s.find("50.0%"), std::string::npos) << s;
  EXPECT_THROW(cm.update(logits().narrow(1, 0, 3), labels()), Error);  // 3 classes into a 4-class matrix
}

TEST(Metrics, RegressionValues) {
  Tensor y = tensor({1.0, 2.0, 3.0, 4.0}, {4, 1});
  Tensor p = tensor({1.5, 2.0, 2.0, 5.0}, {4, 1});
  // residuals 0.5, 0, -1, 1: SSE 2.25, SAE 2.5; mean of y 2.5, SS_tot = 5.
  EXPECT_DOUBLE_EQ(train::mse(p, y), 2.25 / 4);
  EXPECT_DOUBLE_EQ(train::mae(p, y), 2.5 / 4);
  EXPECT_NEAR(train::r2_score(p, y), 1.0 - 2.25 / 5.0, 1e-12);
  EXPECT_DOUBLE_EQ(train::r2_score(y, y), 1.0);
  // Streaming R^2 over two halves equals the one-shot value.
  train::R2Score r2;
  r2.update(p.narrow(0, 0, 2), y.narrow(0, 0, 2));
  r2.update(p.narrow(0, 2, 2), y.narrow(0, 2, 2));
  EXPECT_NEAR(r2.compute(), 1.0 - 2.25 / 5.0, 1e-12);
}

TEST(Metrics, ErrorsNameTheProblem) {
  EXPECT_THROW(train::make_metric("f1"), Error);
  EXPECT_THROW(train::make_metric("top0_accuracy"), Error);
  EXPECT_THROW(train::accuracy(logits(), tensor(std::vector<int64_t>{1, 2})), Error);           // 5 outputs, 2 labels
  EXPECT_THROW(train::accuracy(logits(), tensor(std::vector<int64_t>{1, 2, 9, 0, 0})), Error);  // label 9 of 4
  EXPECT_THROW(train::accuracy(logits(), tensor({1.0, 2.0, 3.0, 0.0, 0.0})), Error);            // float labels
  EXPECT_THROW(train::mse(tensor({1.0, 2.0}), tensor({1.0})), Error);
}
