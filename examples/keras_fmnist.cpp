// The Keras-style workflow on Fashion-MNIST: build a CNN, "compile" it (optimizer, loss, metrics), fit with
// validation data and early stopping, evaluate, predict, and save weights that load in PyTorch.
//   build/examples/keras_fmnist            # 1 epoch on the full data (Debian's dataset-fashion-mnist)
//   build/examples/keras_fmnist 5 10000    # 5 epochs on the first 10000 training images
#include <cstdio>
#include <cstdlib>
#include <numeric>

#include "loom/loom.h"

using namespace loom;

int main(int argc, char** argv) {
  const int64_t epochs = argc > 1 ? std::atoll(argv[1]) : 1;
  const int64_t limit = argc > 2 ? std::atoll(argv[2]) : 0;
  data::DatasetPtr train_set = data::load_fashion_mnist();
  auto test_set = data::load_fashion_mnist(data::kFashionMnistDir, /*train=*/false);
  if (limit > 0 && limit < train_set->size()) {
    std::vector<int64_t> first(static_cast<size_t>(limit));
    std::iota(first.begin(), first.end(), 0);
    train_set = std::make_shared<data::Subset>(train_set, first);
  }
  data::DataLoader train(train_set, {.batch_size = 64, .shuffle = true, .seed = 0});
  data::DataLoader test(test_set, {.batch_size = 500});

  // model = keras.Sequential([...]); the same layers as the seed CNN.
  manual_seed(0);
  auto model = models::make_model("cnn", {.channels = 1, .height = 28, .width = 28, .num_classes = 10});
  std::printf("%s", model->summary({1, 1, 28, 28}).c_str());

  // model.compile(optimizer="adam", loss="sparse_categorical_crossentropy", metrics=["accuracy"]) ...
  optim::Adam opt(model->parameters(), {.lr = 1e-3});
  auto early =
      std::make_shared<train::EarlyStopping>(train::EarlyStoppingOptions{.monitor = "val_loss", .patience = 2});
  // ... and model.fit(x, y, epochs=..., validation_data=(x_test, y_test), callbacks=[early]).
  train::History h = train::fit(*model, train,
                                {.epochs = epochs,
                                 .optimizer = &opt,
                                 .loss = train::default_loss,
                                 .metrics = {"accuracy", "top3_accuracy"},
                                 .validation = &test,
                                 .callbacks = {early}});

  // model.evaluate(x_test, y_test)
  train::ConfusionMatrix cm(10);
  train::Logs r = train::evaluate(*model, test, {.metrics = {"accuracy"}, .confusion = &cm});
  std::printf("test loss %.4f, test accuracy %.2f%% (%zu epochs)\n", r["loss"], 100 * r["accuracy"], h.epochs.size());
  const auto classes = data::fashion_mnist_classes();
  std::printf("%s", cm.to_string(classes).c_str());

  // model.predict(x_test[:5])
  Tensor x5 = test_set->get_batch(std::vector<int64_t>{0, 1, 2, 3, 4}).data;
  Tensor probs = train::predict(*model, x5).softmax(1);
  Tensor best = probs.argmax(1);
  for (int64_t i = 0; i < 5; ++i)
    std::printf("test image %lld: %s (%.1f%%), true %s\n", (long long)i, classes[size_t(best[i].item())].c_str(),
                100 * probs[i][int64_t(best[i].item())].item(),
                classes[size_t(test_set->get(i).target.item())].c_str());

  train::save_weights("fmnist_cnn.safetensors",
                      *model);  // torch: model.load_state_dict(safetensors.torch.load_file(...))
  std::printf("saved fmnist_cnn.safetensors\n");
  return 0;
}
