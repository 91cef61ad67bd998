// A CIFAR-style training loop written by hand (no Trainer): LeNet, SGD with momentum, augmentation.
//   build/examples/cifar_sgd /data/cifar-10-batches-bin 2   # real CIFAR-10 for 2 epochs
//   build/examples/cifar_sgd                                 # a small synthetic 32x32 dataset, 5 epochs
// This is the loop of the classic PyTorch CIFAR-10 tutorial: zero_grad, forward, loss, backward, step.
#include <cstdio>
#include <cstdlib>

#include "loom/loom.h"

using namespace loom;

namespace {

// 10 classes of noisy 32x32 colour images: class k brightens colour channel k % 3 in the horizontal band
// k / 3 (8 rows each), so a small network learns it in a few epochs; flips leave the bands where they are
// and 4-pixel crops move them by half a band at most.
std::shared_ptr<data::TensorDataset> synthetic(int64_t n, uint64_t seed) {
  Generator g(seed);
  Tensor y = randint(0, 10, {n}, {.dtype = DType::i64}, &g);
  Tensor x = rand({n, 3, 32, 32}, {}, &g) * 0.5;
  float* px = x.data<float>();
  const int64_t* py = y.data<int64_t>();
  for (int64_t i = 0; i < n; ++i) {
    const int64_t ch = py[i] % 3, top = (py[i] / 3) * 8;
    for (int64_t h = top; h < top + 8; ++h)
      for (int64_t w = 0; w < 32; ++w) px[((i * 3 + ch) * 32 + h) * 32 + w] += 1.0f;
  }
  return std::make_shared<data::TensorDataset>(x, y);
}

}  // namespace

int main(int argc, char** argv) {
  const int epochs = argc > 2 ? std::atoi(argv[2]) : 5;
  data::DatasetPtr train_raw, test;
  if (argc > 1) {
    train_raw = data::load_cifar10(argv[1], true);
    test = data::load_cifar10(argv[1], false);
  } else {
    train_raw = synthetic(2000, 1);
    test = synthetic(500, 2);
  }
  // Random crops and flips differ every epoch but are a pure function of (seed, epoch, index).
  auto train = data::transformed(train_raw, data::Compose({data::RandomCrop(32, 4), data::RandomHorizontalFlip(0.5)}),
                                 {.seed = 0});
  data::DataLoader loader(train, {.batch_size = 32, .shuffle = true, .num_workers = 1, .seed = 0});
  data::DataLoader test_loader(test, {.batch_size = 256});

  manual_seed(0);
  auto net = models::make_model("lenet", {.channels = 3, .height = 32, .width = 32, .num_classes = 10});
  optim::SGD opt(net->parameters(), {.lr = 0.01, .momentum = 0.9});
  nn::CrossEntropyLoss criterion;

  for (int epoch = 0; epoch < epochs; ++epoch) {
    net->train();
    double running = 0;
    int64_t i = 0;
    for (auto& [x, y] : loader) {
      opt.zero_grad();
      Tensor loss = criterion((*net)(x), y);
      loss.backward();
      opt.step();
      running += loss.item();
      if (++i % 50 == 0) {
        std::printf("[%d, %5lld] loss %.3f\n", epoch + 1, (long long)i, running / 50);
        running = 0;
      }
    }
    // Accuracy on the test set, without gradients and in eval mode.
    net->eval();
    NoGradGuard no_grad;
    train::Accuracy acc;
    for (auto& [x, y] : test_loader) acc.update((*net)(x), y);
    std::printf("epoch %d: test accuracy %.2f%%\n", epoch + 1, 100 * acc.compute());
  }
  return 0;
}
