// Losses: float64 gradchecks for every option that changes the gradient, float32 parity with PyTorch
// (value and gradients), the fused cross-entropy against its composite reference, and error messages.
#include <gtest/gtest.h>

#include "loom/loom.h"
#include "support/gradcheck.h"
#include "support/torch_oracle.h"

using namespace loom;
using loom::test::Arg;
using loom::test::gradcheck;
using loom::test::rand64;
using loom::test::torch_run;

namespace {

using LossFn = std::function<Tensor(const Tensor&, const Tensor&)>;

const Reduction kReductions[] = {Reduction::None, Reduction::Mean, Reduction::Sum};

std::string red(Reduction r) { return std::string("'") + detail::reduction_name(r) + "'"; }

// Class indices in [0, C), with `ignore` written at the given positions.
Tensor labels(const Shape& s, int64_t C, int64_t ignore = -100, std::vector<int64_t> ignored = {}) {
  Tensor t = randint(0, C, s);
  for (int64_t i : ignored) t.data<int64_t>()[i] = ignore;
  return t;
}

// Same f32 inputs through loom and through the torch expression `expr` (over x, t and `extra`); compares the
// loss and the input gradient (and the target gradient when target_grad) under a random upstream gradient.
void parity(const std::string& expr, const LossFn& ours, const Tensor& x0, const Tensor& t0, bool target_grad = false,
            std::vector<Arg> extra = {}) {
  Tensor x = x0.detach().clone().requires_grad_(true);
  Tensor t = t0.detach().clone();
  if (target_grad) t.requires_grad_(true);
  Tensor y = ours(x, t);
  Tensor g = randn(y.shape());
  y.backward(g);
  extra.push_back({"x", x.detach(), true});
  extra.push_back({"t", t.detach(), target_grad});
  extra.push_back({"g", g});
  auto r = torch_run("y = " + expr + "\ny.backward(g)\nout['y'] = y\nout['gx'] = x.grad\n" +
                         (target_grad ? "out['gt'] = t.grad\n" : ""),
                     extra);
  EXPECT_PARITY(expr + " value", y, r["y"]);
  EXPECT_PARITY(expr + " input grad", x.grad(), r["gx"]);
  if (target_grad) {
    EXPECT_PARITY(expr + " target grad", t.grad(), r["gt"]);
  }
}

// Gradcheck of a loss in its first input (and in a floating target when it requires grad).
void check_grad(const LossFn& f, const Tensor& x, const Tensor& t) {
  EXPECT_GRADCHECK([&](const std::vector<Tensor>& in) { return f(in[0], in[1]); }, {x, t});
}

template <class F>
void expect_error(F&& f, const std::string& needle) {
  try {
    f();
    ADD_FAILURE() << "expected an error containing: " << needle;
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find(needle), std::string::npos) << e.what();
  }
}

}  // namespace

// ---------------------------------------------------------------- gradcheck (float64)

TEST(LossGradcheck, Regression) {
  manual_seed(1);
  for (Reduction r : kReductions) {
    Tensor x = rand64({3, 4}, -2, 2), t = rand64({3, 4}, -2, 2);
    check_grad([r](auto& a, auto& b) { return mse_loss(a, b, {r}); }, x, t);
    check_grad([r](auto& a, auto& b) { return l1_loss(a, b, {r}); }, x, t);
    for (double beta : {1.0, 0.5})
      check_grad([r, beta](auto& a, auto& b) { return smooth_l1_loss(a, b, {r, beta}); }, x, t);
    check_grad([r](auto& a, auto& b) { return huber_loss(a, b, {r, 0.7}); }, x, t);
  }
}

TEST(LossGradcheck, CrossEntropyClassIndices) {
  manual_seed(2);
  Tensor w = rand64({5}, 0.5, 2.0, false);
  Tensor t = labels({6}, 5, -100, {2}), t3 = labels({6}, 5);
  for (int64_t i : {0, 4}) t3.data<int64_t>()[i] = 3;
  for (Reduction r : kReductions) {
    Tensor x = rand64({6, 5}, -3, 3);
    check_grad([r](auto& a, auto& b) { return cross_entropy(a, b, {.reduction = r}); }, x, t);
    check_grad([r, w](auto& a, auto& b) { return cross_entropy(a, b, {.weight = w, .reduction = r}); }, x, t);
    check_grad([r](auto& a, auto& b) { return cross_entropy(a, b, {.ignore_index = 3, .reduction = r}); }, x, t3);
    check_grad([r](auto& a, auto& b) { return cross_entropy(a, b, {.reduction = r, .label_smoothing = 0.2}); }, x, t);
    check_grad([r, w](auto& a, auto& b) {
      return cross_entropy(a, b, {.weight = w, .ignore_index = 3, .reduction = r, .label_smoothing = 0.3});
    }, x, t3);
  }
}

TEST(LossGradcheck, CrossEntropySpatialAndUnbatched) {
  manual_seed(3);
  Tensor w = rand64({4}, 0.5, 2.0, false);
  for (Reduction r : kReductions) {
    CrossEntropyOptions o{.weight = w, .reduction = r, .label_smoothing = 0.1};
    check_grad([o](auto& a, auto& b) { return cross_entropy(a, b, o); }, rand64({2, 4, 3, 2}, -2, 2),
               labels({2, 3, 2}, 4, -100, {1, 7}));
    check_grad([o](auto& a, auto& b) { return cross_entropy(a, b, o); }, rand64({4}, -2, 2),
               tensor(std::vector<int64_t>{2}).reshape({}));
  }
}

TEST(LossGradcheck, CrossEntropyProbabilityTargets) {
  manual_seed(4);
  Tensor w = rand64({5}, 0.5, 2.0, false);
  for (Reduction r : kReductions) {
    Tensor x = rand64({4, 5}, -2, 2), p = softmax(rand64({4, 5}, -2, 2, false), 1).requires_grad_(true);
    check_grad([r](auto& a, auto& b) { return cross_entropy(a, b, {.reduction = r}); }, x, p);
    check_grad([r, w](auto& a, auto& b) {
      return cross_entropy(a, b, {.weight = w, .reduction = r, .label_smoothing = 0.25});
    }, x, p);
    Tensor xs = rand64({2, 5, 3}, -2, 2), ps = softmax(rand64({2, 5, 3}, -2, 2, false), 1).requires_grad_(true);
    check_grad([r, w](auto& a, auto& b) { return cross_entropy(a, b, {.weight = w, .reduction = r}); }, xs, ps);
  }
}

TEST(LossGradcheck, NLLLoss) {
  manual_seed(5);
  Tensor w = rand64({5}, 0.5, 2.0, false);
  for (Reduction r : kReductions) {
    NLLOptions o{.weight = w, .ignore_index = 1, .reduction = r};
    Tensor t = labels({6}, 5);
    t.data<int64_t>()[0] = 1;
    check_grad([o](auto& a, auto& b) { return nll_loss(a, b, o); }, rand64({6, 5}, -3, 0), t);
    check_grad([r](auto& a, auto& b) { return nll_loss(a, b, {.reduction = r}); }, rand64({2, 5, 3}, -3, 0),
               labels({2, 3}, 5));
  }
}

TEST(LossGradcheck, BinaryCrossEntropy) {
  manual_seed(6);
  Tensor w = rand64({3}, 0.5, 2.0, false), pw = rand64({3}, 0.5, 3.0, false);
  for (Reduction r : kReductions) {
    Tensor p = rand64({4, 3}, 0.1, 0.9), t = rand64({4, 3}, 0, 1), x = rand64({4, 3}, -4, 4);
    check_grad([r](auto& a, auto& b) { return binary_cross_entropy(a, b, {.reduction = r}); }, p, t);
    check_grad([r, w](auto& a, auto& b) { return binary_cross_entropy(a, b, {.weight = w, .reduction = r}); }, p, t);
    check_grad([r](auto& a, auto& b) { return binary_cross_entropy_with_logits(a, b, {.reduction = r}); }, x, t);
    check_grad([r, w, pw](auto& a, auto& b) {
      return binary_cross_entropy_with_logits(a, b, {.weight = w, .reduction = r, .pos_weight = pw});
    }, x, t);
  }
}

TEST(LossGradcheck, KLDiv) {
  manual_seed(7);
  for (Reduction r : {Reduction::None, Reduction::Mean, Reduction::Sum, Reduction::BatchMean}) {
    Tensor x = log_softmax(rand64({3, 4}, -2, 2, false), 1).requires_grad_(true);
    Tensor p = softmax(rand64({3, 4}, -2, 2, false), 1).requires_grad_(true);
    Tensor lp = log(p.detach()).requires_grad_(true);
    check_grad([r](auto& a, auto& b) { return kl_div(a, b, {.reduction = r}); }, x, p);
    check_grad([r](auto& a, auto& b) { return kl_div(a, b, {.reduction = r, .log_target = true}); }, x, lp);
  }
}

// ---------------------------------------------------------------- parity with PyTorch (float32)

TEST(LossParity, Regression) {
  manual_seed(11);
  Tensor x = randn({4, 5}) * 2.0, t = randn({4, 5}) * 2.0;
  for (Reduction r : kReductions) {
    const std::string R = ", reduction=" + red(r) + ")";
    parity("F.mse_loss(x, t" + R, [r](auto& a, auto& b) { return mse_loss(a, b, {r}); }, x, t, true);
    parity("F.l1_loss(x, t" + R, [r](auto& a, auto& b) { return l1_loss(a, b, {r}); }, x, t, true);
    for (double beta : {1.0, 0.5, 0.0})
      parity("F.smooth_l1_loss(x, t, beta=" + std::to_string(beta) + R,
             [r, beta](auto& a, auto& b) { return smooth_l1_loss(a, b, {r, beta}); }, x, t, true);
    for (double delta : {1.0, 0.3})
      parity("F.huber_loss(x, t, delta=" + std::to_string(delta) + R,
             [r, delta](auto& a, auto& b) { return huber_loss(a, b, {r, delta}); }, x, t, true);
  }
}

TEST(LossParity, CrossEntropyClassIndices) {
  manual_seed(12);
  Tensor x = randn({8, 10}) * 3.0, w = rand({10}) + 0.5;
  Tensor t = labels({8}, 10, -100, {1, 6}), t3 = labels({8}, 10);
  t3.data<int64_t>()[2] = 3;
  for (Reduction r : kReductions) {
    const std::string R = "reduction=" + red(r);
    parity("F.cross_entropy(x, t, " + R + ")", [r](auto& a, auto& b) { return cross_entropy(a, b, {.reduction = r}); },
           x, t);
    parity("F.cross_entropy(x, t, weight=w, " + R + ")",
           [r, w](auto& a, auto& b) { return cross_entropy(a, b, {.weight = w, .reduction = r}); }, x, t, false,
           {{"w", w}});
    parity("F.cross_entropy(x, t, ignore_index=3, " + R + ")",
           [r](auto& a, auto& b) { return cross_entropy(a, b, {.ignore_index = 3, .reduction = r}); }, x, t3);
    parity("F.cross_entropy(x, t, " + R + ", label_smoothing=0.1)",
           [r](auto& a, auto& b) { return cross_entropy(a, b, {.reduction = r, .label_smoothing = 0.1}); }, x, t);
    parity("F.cross_entropy(x, t, weight=w, ignore_index=3, " + R + ", label_smoothing=0.3)",
           [r, w](auto& a, auto& b) {
             return cross_entropy(a, b, {.weight = w, .ignore_index = 3, .reduction = r, .label_smoothing = 0.3});
           }, x, t3, false, {{"w", w}});
  }
}

TEST(LossParity, CrossEntropySpatialUnbatchedAndProbabilities) {
  manual_seed(13);
  Tensor w = rand({5}) + 0.5;
  for (Reduction r : kReductions) {
    const std::string R = "reduction=" + red(r);
    CrossEntropyOptions o{.weight = w, .reduction = r, .label_smoothing = 0.2};
    LossFn f = [o](auto& a, auto& b) { return cross_entropy(a, b, o); };
    const std::string opts = "weight=w, " + R + ", label_smoothing=0.2)";
    const std::string ce = "F.cross_entropy(x, t, " + opts;
    parity(ce, f, randn({2, 5, 3, 4}), labels({2, 3, 4}, 5, -100, {0, 5, 17}), false, {{"w", w}});
    parity(ce, f, randn({5}), tensor(std::vector<int64_t>{4}).reshape({}), false, {{"w", w}});
    parity("F.cross_entropy(x, t, " + opts, f, randn({6, 5}), softmax(randn({6, 5}), 1), true, {{"w", w}});
    parity("F.cross_entropy(x, t, " + R + ")", [r](auto& a, auto& b) { return cross_entropy(a, b, {.reduction = r}); },
           randn({2, 5, 3}), softmax(randn({2, 5, 3}), 1), true);
  }
}

TEST(LossParity, NLLLoss) {
  manual_seed(14);
  Tensor w = rand({6}) + 0.5;
  for (Reduction r : kReductions) {
    const std::string R = "reduction=" + red(r);
    Tensor t = labels({7}, 6, 2, {});
    t.data<int64_t>()[3] = 2;
    parity("F.nll_loss(x, t, weight=w, ignore_index=2, " + R + ")",
           [r, w](auto& a, auto& b) { return nll_loss(a, b, {.weight = w, .ignore_index = 2, .reduction = r}); },
           log_softmax(randn({7, 6}), 1), t, false, {{"w", w}});
    parity("F.nll_loss(x, t, " + R + ")", [r](auto& a, auto& b) { return nll_loss(a, b, {.reduction = r}); },
           log_softmax(randn({2, 6, 4}), 1), labels({2, 4}, 6, -100, {5}));
    parity("F.nll_loss(x, t, weight=w, " + R + ")",
           [r, w](auto& a, auto& b) { return nll_loss(a, b, {.weight = w, .reduction = r}); },
           log_softmax(randn({6}), 0), tensor(std::vector<int64_t>{1}).reshape({}), false, {{"w", w}});
  }
}

TEST(LossParity, BinaryCrossEntropy) {
  manual_seed(15);
  Tensor p = rand({5, 3}) * 0.9 + 0.05, t = rand({5, 3}), x = randn({5, 3}) * 4.0;
  Tensor w = rand({3}) + 0.5, pw = rand({3}) * 3.0 + 0.2;
  for (Reduction r : kReductions) {
    const std::string R = "reduction=" + red(r);
    parity("F.binary_cross_entropy(x, t, " + R + ")",
           [r](auto& a, auto& b) { return binary_cross_entropy(a, b, {.reduction = r}); }, p, t, true);
    parity("F.binary_cross_entropy(x, t, weight=w, " + R + ")",
           [r, w](auto& a, auto& b) { return binary_cross_entropy(a, b, {.weight = w, .reduction = r}); }, p, t, true,
           {{"w", w}});
    parity("F.binary_cross_entropy_with_logits(x, t, " + R + ")",
           [r](auto& a, auto& b) { return binary_cross_entropy_with_logits(a, b, {.reduction = r}); }, x, t, true);
    parity("F.binary_cross_entropy_with_logits(x, t, weight=w, pos_weight=pw, " + R + ")",
           [r, w, pw](auto& a, auto& b) {
             return binary_cross_entropy_with_logits(a, b, {.weight = w, .reduction = r, .pos_weight = pw});
           }, x, t, true, {{"w", w}, {"pw", pw}});
  }
  // Saturated probabilities (exactly 0 and 1) and huge logits stay finite, with PyTorch's values.
  Tensor edge = tensor({0.0, 1.0, 0.5, 1.0, 0.0, 1e-30}), hard = tensor({0.0, 1.0, 1.0, 0.0, 1.0, 1.0});
  parity("F.binary_cross_entropy(x, t, reduction='none')",
         [](auto& a, auto& b) { return binary_cross_entropy(a, b, {.reduction = Reduction::None}); }, edge, hard);
  Tensor big = tensor({-90.0, -30.0, 0.0, 30.0, 90.0, 0.0});
  parity("F.binary_cross_entropy_with_logits(x, t, reduction='none')",
         [](auto& a, auto& b) { return binary_cross_entropy_with_logits(a, b, {.reduction = Reduction::None}); }, big,
         hard, true);
}

TEST(LossParity, KLDiv) {
  manual_seed(16);
  torch_run("import warnings\nwarnings.simplefilter('ignore')", {});  // torch warns about reduction='mean'
  Tensor x = log_softmax(randn({4, 6}), 1), p = softmax(randn({4, 6}), 1), lp = log_softmax(randn({4, 6}), 1);
  Tensor p0 = p.clone();
  p0.data<float>()[3] = 0.0f;  // 0 log 0 = 0
  for (Reduction r : {Reduction::None, Reduction::Mean, Reduction::Sum, Reduction::BatchMean}) {
    const std::string R = "reduction=" + red(r);
    parity("F.kl_div(x, t, " + R + ")", [r](auto& a, auto& b) { return kl_div(a, b, {.reduction = r}); }, x, p, true);
    parity("F.kl_div(x, t, " + R + ")", [r](auto& a, auto& b) { return kl_div(a, b, {.reduction = r}); }, x, p0);
    parity("F.kl_div(x, t, " + R + ", log_target=True)",
           [r](auto& a, auto& b) { return kl_div(a, b, {.reduction = r, .log_target = true}); }, x, lp, true);
  }
}

TEST(LossParity, ModulesMatchFunctionalForms) {
  manual_seed(17);
  Tensor x = randn({4, 3}), t = randint(0, 3, {4}), y = rand({4, 3});
  Tensor w = rand({3}) + 0.5;
  nn::CrossEntropyLoss ce({.weight = w, .label_smoothing = 0.1});
  auto r = torch_run("out['ce'] = nn.CrossEntropyLoss(weight=w, label_smoothing=0.1)(x, t)\n"
                     "out['bce'] = nn.BCEWithLogitsLoss(reduction='sum')(x, y)\nout['mse'] = nn.MSELoss()(x, y)\n"
                     "out['kl'] = nn.KLDivLoss(reduction='batchmean')(F.log_softmax(x, 1), F.softmax(y, 1))\n"
                     "out['h'] = nn.HuberLoss(delta=0.5)(x, y)\nout['nll'] = nn.NLLLoss()(x, t)",
                     {{"x", x}, {"t", t}, {"y", y}, {"w", w}});
  EXPECT_PARITY("CrossEntropyLoss", ce(x, t), r["ce"]);
  EXPECT_PARITY("CrossEntropyLoss forward", ce.forward(x, t), r["ce"]);
  EXPECT_PARITY("BCEWithLogitsLoss", nn::BCEWithLogitsLoss({.reduction = Reduction::Sum})(x, y), r["bce"]);
  EXPECT_PARITY("MSELoss", nn::MSELoss()(x, y), r["mse"]);
  nn::KLDivLoss kl({.reduction = Reduction::BatchMean});
  EXPECT_PARITY("KLDivLoss", kl(log_softmax(x, 1), softmax(y, 1)), r["kl"]);
  EXPECT_PARITY("HuberLoss", nn::HuberLoss({.delta = 0.5})(x, y), r["h"]);
  EXPECT_PARITY("NLLLoss", nn::NLLLoss()(x, t), r["nll"]);
}

// ---------------------------------------------------------------- fused kernel vs composite reference

TEST(LossReference, FusedCrossEntropyMatchesComposite) {
  manual_seed(21);
  // Large enough for the threaded path; a transposed (strided) input takes the contiguous-copy path.
  Tensor w = rand({300}, {.dtype = DType::f64}) + 0.5;
  for (bool strided : {false, true}) {
    Tensor base = randn(strided ? Shape{300, 256} : Shape{256, 300}, {.dtype = DType::f64});
    Tensor x = (strided ? base.t() : base).detach().requires_grad_(true);
    Tensor x2 = x.detach().clone().requires_grad_(true);
    Tensor t = labels({256}, 300, -100, {3, 100, 200});
    Tensor ours = cross_entropy(x, t, {.weight = w});
    Tensor ref = nll_loss(log_softmax(x2, 1), t, {.weight = w});
    EXPECT_PARITY("fused value", ours, ref, 1e-12);
    ours.backward();
    ref.backward();
    EXPECT_PARITY("fused grad", x.grad(), x2.grad(), 1e-12);
  }
}

// ---------------------------------------------------------------- errors

TEST(LossErrors, NameTheLossAndShapes) {
  Tensor x = randn({4, 10}), t = tensor(std::vector<int64_t>{1, 12, 3, 4}, {4});
  expect_error([&] { cross_entropy(x, t); }, "cross_entropy: target 12 is out of bounds for 10 classes");
  expect_error([&] { nll_loss(x, tensor(std::vector<int64_t>{1, -1, 3, 4}, {4})); },
               "nll_loss: target -1 is out of bounds for 10 classes");
  expect_error([&] { cross_entropy(x, tensor(std::vector<int64_t>{1, 2, 3}, {3})); },
               "cross_entropy: target of shape [3] does not match input of shape [4, 10] (expected [4])");
  expect_error([&] { cross_entropy(x, randn({4})); }, "cross_entropy: class-index targets must be int64, got float32");
  expect_error([&] { cross_entropy(x, t.to(DType::i32)); }, "must be int64, got int32");
  expect_error([&] { cross_entropy(x, randint(0, 10, {4}), {.weight = ones({5})}); },
               "cross_entropy: weight must be 1-D with one value per class (10), got shape [5]");
  expect_error([&] { cross_entropy(x, randint(0, 10, {4}), {.label_smoothing = 1.5}); },
               "label_smoothing must be in [0, 1]");
  expect_error([&] { mse_loss(randn({4, 1}), randn({4})); },
               "mse_loss: target of shape [4] does not match input of shape [4, 1]");
  expect_error([&] { l1_loss(randn({4}), randn({4}, {.dtype = DType::f64})); },
               "l1_loss: target must have the input's dtype");
  expect_error([&] { binary_cross_entropy(tensor({0.5, 1.5}), tensor({0.0, 1.0})); },
               "binary_cross_entropy: all elements of input should be between 0 and 1");
  expect_error([&] { binary_cross_entropy_with_logits(randn({2, 3}), rand({2, 3}), {.pos_weight = ones({4})}); },
               "pos_weight of shape [4] does not broadcast to the input's shape [2, 3]");
  expect_error([&] { mse_loss(randn({3}), randn({3}), {Reduction::BatchMean}); }, "only valid for kl_div");
  expect_error([&] { cross_entropy(randn({2, 3}).to(DType::i64), randint(0, 3, {2})); },
               "cross_entropy: input must be a floating point tensor");
}
