// Trains y = 3x + 1 with the installed loom: proves headers, library and dependencies all resolve.
#include <loom/loom.h>

#include <cmath>
#include <cstdio>

int main() {
  using namespace loom;
  manual_seed(0);
  Tensor x = randn({64, 1});
  Tensor y = x * 3.0 + 1.0;
  nn::Linear lin({.in = 1, .out = 1});
  optim::SGD opt(lin.parameters(), {.lr = 0.1});
  for (int i = 0; i < 200; ++i) {
    opt.zero_grad();
    Tensor loss = mse_loss(lin(x), y);
    loss.backward();
    opt.step();
  }
  const double w = lin.weight.item(), b = lin.bias.item();
  std::printf("w=%.4f b=%.4f\n", w, b);
  return (std::abs(w - 3.0) < 1e-3 && std::abs(b - 1.0) < 1e-3) ? 0 : 1;
}
