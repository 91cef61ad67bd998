// The distillation loss: a float64 finite-difference gradcheck of the fused soft term (and the whole loss),
// float32 parity with PyTorch's formula alpha * T^2 * kl_div(log_softmax(s / T), softmax(t / T), 'batchmean')
// + (1 - alpha) * cross_entropy(s, y), for classifier (N, C) and language-model (B, T, V) logits, and errors.
#include <gtest/gtest.h>

#include "loom/loom.h"
#include "support/gradcheck.h"
#include "support/torch_oracle.h"

using namespace loom;
using loom::test::rand64;
using loom::test::torch_run;

namespace {

template <class F>
void expect_error(F&& f, const std::string& needle) {
  try {
    f();
    ADD_FAILURE() << "expected an error containing: " << needle;
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find(needle), std::string::npos) << e.what();
  }
}

// Our loss and torch's formula on the same f32 logits: value and student gradient under a random upstream
// gradient. Logits of any rank are compared as (rows, V), the way the loss reads them.
void parity(const Tensor& s0, const Tensor& t0, const Tensor& y, double T, double alpha) {
  Tensor s = s0.detach().clone().requires_grad_(true);
  Tensor loss = distillation_loss(s, t0, y, {.temperature = T, .alpha = alpha});
  Tensor g = randn({});
  loss.backward(g);
  const std::string code =
      "V = s.shape[-1]\nsr, tr, yr = s.reshape(-1, V), t.reshape(-1, V), y.reshape(-1)\n"
      "y_ = " + std::to_string(alpha) + " * " + std::to_string(T * T) + " * F.kl_div(F.log_softmax(sr / " +
      std::to_string(T) + ", -1), F.softmax(tr / " + std::to_string(T) + ", -1), reduction='batchmean') + (1 - " +
      std::to_string(alpha) + ") * F.cross_entropy(sr, yr)\ny_.backward(g)\nout['y'] = y_\nout['gs'] = s.grad\n";
  auto r = torch_run(code, {{"s", s.detach(), true}, {"t", t0}, {"y", y}, {"g", g}});
  const std::string what = "T " + std::to_string(T) + " alpha " + std::to_string(alpha) + " shape ";
  EXPECT_PARITY(what + "value", loss, r["y"]);
  EXPECT_PARITY(what + "student grad", s.grad(), r["gs"]);
}

}  // namespace

TEST(DistillationLoss, GradcheckFloat64) {
  manual_seed(3);
  for (const Shape& shape : {Shape{4, 5}, Shape{2, 3, 6}}) {
    Shape rows = shape;
    rows.pop_back();
    Tensor y = randint(0, shape.back(), rows);
    Tensor t = rand64(shape, -3, 3, false);
    for (double T : {1.0, 4.0})
      for (double alpha : {0.0, 0.3, 1.0}) {
        Tensor s = rand64(shape, -3, 3);
        EXPECT_GRADCHECK([&](const std::vector<Tensor>& in) {
          return distillation_loss(in[0], t, y, {.temperature = T, .alpha = alpha});
        }, {s});
      }
    // alpha == 1 needs no labels.
    EXPECT_GRADCHECK([&](const std::vector<Tensor>& in) {
      return distillation_loss(in[0], t, Tensor(), {.temperature = 2.0, .alpha = 1.0});
    }, {rand64(shape, -3, 3)});
  }
}

TEST(DistillationLoss, ParityWithTorch) {
  manual_seed(4);
  Tensor s = randn({8, 10}) * 3.0, t = randn({8, 10}) * 3.0, y = randint(0, 10, {8});
  for (auto [T, alpha] : {std::pair{4.0, 0.9}, {1.0, 0.5}, {2.5, 0.0}, {3.0, 1.0}}) parity(s, t, y, T, alpha);
  // A language model's (B, T, V) logits: batchmean over the B * T rows.
  Tensor ls = randn({2, 5, 7}) * 2.0, lt = randn({2, 5, 7}) * 2.0, ly = randint(0, 7, {2, 5});
  parity(ls, lt, ly, 2.0, 0.7);
  // Far-apart logits: the teacher's softmax underflows to exact zeros at T = 1.
  Tensor ws = randn({4, 6}) * 40.0, wt = randn({4, 6}) * 40.0;
  parity(ws, wt, randint(0, 6, {4}), 1.0, 0.8);
}

TEST(DistillationLoss, TeacherGetsNoGradientAndLimitsHold) {
  manual_seed(5);
  Tensor s = randn({3, 4}).requires_grad_(true), t = randn({3, 4}).requires_grad_(true);
  Tensor y = randint(0, 4, {3});
  distillation_loss(s, t, y, {.temperature = 2, .alpha = 0.5}).backward();
  EXPECT_TRUE(s.grad().defined());
  EXPECT_FALSE(t.grad().defined());
  // The soft term is zero when the student equals the teacher; alpha 0 is plain cross-entropy.
  EXPECT_NEAR(distillation_loss(t.detach(), t.detach(), y, {.temperature = 3, .alpha = 1}).item(), 0.0, 1e-6);
  EXPECT_NEAR(distillation_loss(s.detach(), t.detach(), y, {.temperature = 3, .alpha = 0}).item(),
              cross_entropy(s.detach(), y).item(), 1e-6);
}

TEST(DistillationLoss, ErrorsNameTheProblem) {
  Tensor s = randn({4, 10}), y = randint(0, 10, {4});
  expect_error([&] { distillation_loss(s, randn({4, 12}), y); },
               "teacher logits of shape [4, 12] do not match the student's [4, 10]");
  expect_error([&] { distillation_loss(s, randn({4, 10}), y, {.temperature = 0}); }, "temperature must be");
  expect_error([&] { distillation_loss(s, randn({4, 10}), y, {.alpha = 1.5}); }, "alpha must be in [0, 1]");
  expect_error([&] { distillation_loss(s, randn({4, 10}), randint(0, 10, {3})); },
               "target of shape [3] does not match student logits of shape [4, 10]");
  expect_error([&] { distillation_loss(s, randn({4, 10}), Tensor(), {.alpha = 0.5}); }, "a target is needed");
  expect_error([&] { distillation_loss(s, randn({4, 10}, {.dtype = DType::f64}), y); }, "must have the student's dtype");
  expect_error([&] { distillation_loss(s, randn({4, 10}), tensor(std::vector<int64_t>{1, 2, 30, 4}, {4})); },
               "out of bounds for 10 classes");
}
