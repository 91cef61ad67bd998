// Linear regression by gradient descent on a CSV of house prices: y = X w + b fitted with plain SGD steps.
//   build/examples/linear_regression                 # writes a small synthetic houses.csv and fits it
//   build/examples/linear_regression data.csv price  # or your own CSV and target column
// The features are standardised with the training split's statistics, which is what lets one learning rate
// suit columns measured in square metres and in years alike.
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <random>

#include "loom/loom.h"

using namespace loom;

namespace {

// price = 1500 * area + 8000 * rooms - 900 * age + 40000 + noise (in some currency), 400 houses.
std::string write_houses_csv() {
  const std::string path = (std::filesystem::temp_directory_path() / "loom_example_houses.csv").string();
  std::ofstream f(path);
  f << "area_m2,rooms,age_years,price\n";
  std::mt19937 rng(42);
  std::uniform_real_distribution<double> area(40, 220), age(0, 80);
  std::uniform_int_distribution<int> rooms(1, 6);
  std::normal_distribution<double> noise(0, 15000);
  for (int i = 0; i < 400; ++i) {
    const double a = area(rng), y = age(rng);
    const int r = rooms(rng);
    f << a << "," << r << "," << y << "," << 1500 * a + 8000 * r - 900 * y + 40000 + noise(rng) << "\n";
  }
  return path;
}

}  // namespace

int main(int argc, char** argv) {
  const std::string csv = argc > 1 ? argv[1] : write_houses_csv();
  const std::string target = argc > 2 ? argv[2] : "price";
  auto split = data::load_csv(
      csv, {.target = target, .test_fraction = 0.2, .seed = 0, .standardize = true, .standardize_target = true});
  const Tensor x = split.train->data(), y = split.train->target();  // (N, F), (N, 1)
  std::printf("%s: %lld training rows, features:", csv.c_str(), (long long)x.size(0));
  for (const auto& n : split.feature_names) std::printf(" %s", n.c_str());
  std::printf("\n");

  manual_seed(0);
  nn::Linear model({.in = x.size(1), .out = 1});
  optim::SGD opt(model.parameters(), {.lr = 0.1});
  for (int epoch = 1; epoch <= 100; ++epoch) {  // full-batch gradient descent
    Tensor loss = mse_loss(model(x), y);
    opt.zero_grad();
    loss.backward();
    opt.step();
    if (epoch % 20 == 0) std::printf("epoch %3d  mse (standardised) %.5f\n", epoch, loss.item());
  }

  // Back to the original units: predictions and targets through the target scaler's inverse.
  const Tensor pred = split.target_scaler->inverse(train::predict(model, split.test->data()));
  const Tensor truth = split.target_scaler->inverse(split.test->target());
  std::printf("test: MAE %.0f  R^2 %.4f\n", train::mae(pred, truth), train::r2_score(pred, truth));
  std::printf("weights per standardised feature:");
  for (double w : model.weight.tolist()) std::printf(" %.3f", w);
  std::printf("\n");
  return 0;
}
