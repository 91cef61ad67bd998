// Attribution methods (loom/explain): integrated gradients exact on a linear model, completeness on the seed
// CNN shrinking with steps, quadrature rules, Grad-CAM and occlusion on a model built to look at one corner,
// and Adebayo et al.'s model-randomisation sanity check for saliency.
#include <gtest/gtest.h>

#include <cmath>
#include <iostream>

#include "loom/explain/attribution.h"
#include "loom/loom.h"

using namespace loom;
using namespace loom::explain;

namespace {

std::shared_ptr<nn::Sequential> seed_cnn() {
  return models::make_model("cnn", {.channels = 1, .height = 28, .width = 28, .num_classes = 10});
}

// A few Adam steps on random images labelled by which image half is brighter (class 1: left, 2: right), so
// the trained CNN's gradients have a structure a freshly initialised one's lack.
void train_briefly(nn::Module& m, uint64_t seed) {
  Generator g(seed);
  Tensor x = rand({256, 1, 28, 28}, {}, &g);
  std::vector<int64_t> y;
  const std::vector<double> left = x.slice(3, 0, 14).mean({1, 2, 3}).tolist(), right = x.slice(3, 14, 28).mean({1, 2, 3}).tolist();
  for (size_t i = 0; i < left.size(); ++i) y.push_back(left[i] > right[i] ? 1 : 2);
  auto ds = std::make_shared<data::TensorDataset>(x, tensor(y, {256}));
  data::DataLoader loader(ds, {.batch_size = 32, .shuffle = true});
  optim::Adam opt(m.parameters(), {.lr = 2e-3});
  train::fit(m, loader, {.epochs = 2, .optimizer = &opt, .metrics = {}, .progress = train::ProgressMode::None});
}

// How much brighter the left half must be made to raise class 1: the gradient's left-half sum minus its
// right-half sum (positive once the model has learnt the task).
double left_minus_right(const Tensor& grad) {
  return grad.slice(2, 0, 14).sum().item() - grad.slice(2, 14, 28).sum().item();
}

}  // namespace

TEST(Explain, IntegratedGradientsOnALinearModelIsExactlyInputTimesWeight) {
  manual_seed(1);
  nn::Sequential lin(nn::Flatten(), nn::Linear({.in = 12, .out = 3}));
  lin.to(DType::f64);
  const Tensor x = randn({1, 3, 4}, {.dtype = DType::f64}), b = randn({1, 3, 4}, {.dtype = DType::f64});
  const Tensor w = lin.at<nn::Linear>(1)->weight.select(0, 2).reshape({1, 3, 4});
  for (Quadrature q : {Quadrature::RiemannRight, Quadrature::RiemannTrapezoid, Quadrature::GaussLegendre}) {
    auto ig = integrated_gradients(lin, x, 2, b, {.steps = 7, .rule = q});
    const std::vector<double> got = ig.attributions.tolist(), want = ((x - b) * w).tolist();
    for (size_t i = 0; i < got.size(); ++i) EXPECT_NEAR(got[i], want[i], 1e-12) << to_string(q) << " element " << i;
    EXPECT_LT(ig.completeness_error, 1e-10);
  }
  // No parameter gradients were left behind, and the mode is restored.
  for (const auto& p : lin.parameters()) EXPECT_FALSE(p.grad().defined());
  EXPECT_TRUE(lin.is_training());
}

TEST(Explain, QuadratureRules) {
  std::vector<double> a, w;
  // Gauss-Legendre with n nodes integrates t^(2n-1) over [0, 1] exactly.
  for (int64_t n : {1, 2, 5, 16, 64}) {
    quadrature(Quadrature::GaussLegendre, n, a, w);
    double s = 0, ws = 0;
    for (size_t i = 0; i < a.size(); ++i) s += w[i] * std::pow(a[i], double(2 * n - 1)), ws += w[i];
    EXPECT_NEAR(s, 1.0 / double(2 * n), 1e-12) << n;
    EXPECT_NEAR(ws, 1.0, 1e-12);
    for (size_t i = 1; i < a.size(); ++i) EXPECT_LT(a[i - 1], a[i]);
  }
  quadrature(Quadrature::RiemannRight, 4, a, w);
  EXPECT_EQ(a, (std::vector<double>{0.25, 0.5, 0.75, 1.0}));
  quadrature(Quadrature::RiemannTrapezoid, 3, a, w);
  EXPECT_EQ(w, (std::vector<double>{0.25, 0.5, 0.25}));
  EXPECT_THROW(parse_quadrature("simpson"), Error);
  EXPECT_THROW(quadrature(Quadrature::RiemannLeft, 0, a, w), Error);
}

TEST(Explain, CompletenessOnTheSeedCnnWithinOnePercentAt64StepsAndFallingWithSteps) {
  manual_seed(3);
  auto cnn = seed_cnn();
  train_briefly(*cnn, 4);
  Generator g(5);
  const Tensor x = rand({1, 28, 28}, {}, &g);
  const int64_t target = 1;
  for (Baseline bl : {Baseline::Zeros, Baseline::Blur, Baseline::Mean}) {
    const Tensor base = make_baseline(x, bl, 3.0);
    for (Quadrature q : {Quadrature::RiemannRight, Quadrature::GaussLegendre}) {
      const auto ig = integrated_gradients(*cnn, x, target, base, {.steps = 64, .rule = q});
      EXPECT_LE(ig.relative_error, 0.01) << "baseline " << int(bl) << " " << to_string(q);
      EXPECT_GT(std::abs(ig.score - ig.baseline_score), 1e-3);  // a real difference to explain
    }
  }
  // The error falls as the steps grow (right Riemann sums: O(1/n)).
  const Tensor base = make_baseline(x, Baseline::Zeros);
  double prev = INFINITY;
  for (int64_t n : {4, 16, 64, 256}) {
    const double e = integrated_gradients(*cnn, x, target, base, {.steps = n, .rule = Quadrature::RiemannRight}).relative_error;
    EXPECT_LT(e, prev) << n << " steps";
    prev = e;
  }
}

TEST(Explain, BaselinesKeepShapeAndMeaning) {
  Generator g(2);
  const Tensor x = rand({3, 10, 12}, {}, &g);
  EXPECT_EQ(make_baseline(x, Baseline::Zeros).abs().sum().item(), 0.0);
  const Tensor m = make_baseline(x, Baseline::Mean);
  EXPECT_NEAR(m[1][4][7].item(), x[1].mean().item(), 1e-6);
  const Tensor bl = make_baseline(x, Baseline::Blur, 2.0);
  EXPECT_EQ(bl.shape(), x.shape());
  EXPECT_LT(bl.std({0, 1, 2}, 1).item(), 0.5 * x.std({0, 1, 2}, 1).item());  // smoothed
  const Tensor c = full({1, 6, 6}, 0.3);
  EXPECT_NEAR((make_baseline(c, Baseline::Blur, 2.0) - c).abs().max().item(), 0.0, 1e-6);  // constant stays
  EXPECT_THROW(parse_baseline("noise"), Error);
}

TEST(Explain, GradCamAndOcclusionPointAtTheEvidence) {
  // A model whose class-1 logit is the mean of the top-left 8x8 corner of a 16x16 image, through a conv layer:
  // both methods must put their mass there.
  nn::Sequential m(nn::Conv2d({.in = 1, .out = 1, .kernel_size = 1}), nn::ReLU(), nn::Flatten(),
                   nn::Linear({.in = 256, .out = 2}));
  {
    NoGradGuard ng;
    m.at<nn::Conv2d>(0)->weight.fill_(1.0);
    m.at<nn::Conv2d>(0)->bias.fill_(0.0);
    Tensor w = m.at<nn::Linear>(3)->weight;
    w.fill_(0.0);
    m.at<nn::Linear>(3)->bias.fill_(0.0);
    for (int y = 0; y < 8; ++y)
      for (int x = 0; x < 8; ++x) w[1][y * 16 + x].fill_(1.0 / 64);
  }
  const Tensor img = full({1, 16, 16}, 0.5);
  EXPECT_EQ(last_conv_layer(m), 0);
  const Tensor cam = grad_cam(m, img, 1);
  ASSERT_EQ(cam.shape(), (Shape{16, 16}));
  EXPECT_GT(cam.min().item(), -1e-9);
  const Tensor occ = occlusion(m, img, 1, {.window = 4, .stride = 4});
  ASSERT_EQ(occ.shape(), (Shape{16, 16}));
  EXPECT_NEAR(occ[0][0].item(), 0.5 * 16 / 64, 1e-6);  // a 4x4 window in the corner removes 16 of 64 halves
  EXPECT_NEAR(occ[12][12].item(), 0.0, 1e-9);
  const Tensor sal = saliency(m, img, 1).squeeze(0);
  EXPECT_NEAR(sal[0][0].item(), 1.0 / 64, 1e-7);
  EXPECT_EQ(sal[15][15].item(), 0.0);
  nn::Sequential noconv(nn::Flatten(), nn::Linear({.in = 256, .out = 2}));
  EXPECT_THROW(grad_cam(noconv, img, 1), Error);
  EXPECT_THROW(saliency(m, img, 5), Error);  // target outside the classes
}

TEST(Explain, SaliencyChangesWhenTheModelIsRandomisedAdebayo) {
  manual_seed(11);
  auto cnn = seed_cnn();
  train_briefly(*cnn, 12);
  Generator g(13);
  const Tensor x = rand({1, 28, 28}, {}, &g);
  const Tensor g1 = input_gradients(*cnn, x.unsqueeze(0), {1}).squeeze(0);
  EXPECT_NEAR(spearman(g1, input_gradients(*cnn, x.unsqueeze(0), {1}).squeeze(0)), 1.0, 1e-12);  // deterministic
  EXPECT_GT(left_minus_right(g1), 0.0);  // the trained model looks at what decides class 1
  // Cascading randomisation from the top: re-initialise every layer's weights.
  manual_seed(99);
  auto fresh = seed_cnn();
  cnn->load_state_dict(fresh->state_dict());
  const Tensor g2 = input_gradients(*cnn, x.unsqueeze(0), {1}).squeeze(0);
  const double rho = spearman(g1, g2);
  EXPECT_LT(std::abs(rho), 0.3) << "the gradient map barely changed when the weights were randomised: rho " << rho;
  const double rho_abs = spearman(g1.abs(), saliency(*cnn, x, 1));
  EXPECT_LT(rho_abs, 0.9) << "saliency (|gradient|) rank correlation " << rho_abs;
  std::cout << "model randomisation: Spearman rho of gradients " << rho << ", of |gradients| " << rho_abs << "\n";
}

TEST(Explain, SpearmanOfKnownOrders) {
  EXPECT_NEAR(spearman(tensor({1, 2, 3, 4}), tensor({10, 20, 30, 40})), 1.0, 1e-12);
  EXPECT_NEAR(spearman(tensor({1, 2, 3, 4}), tensor({4, 3, 2, 1})), -1.0, 1e-12);
}
