// The seed models by name, built as nn::Sequential so their state-dict keys are exactly those of the same
// PyTorch nn.Sequential ("0.weight", "3.weight", "7.weight", "9.weight" for the cnn).
//   auto cnn = models::make_model("cnn", {.channels = 1, .height = 28, .width = 28, .num_classes = 10});
//   auto reg = models::make_model("linreg", {.features = 13});            // Linear(13, 1)
//   std::cout << cnn->summary(models::input_shape(spec, /*batch=*/1));
#pragma once
#include <memory>
#include <string>
#include <vector>

#include "loom/core/shape.h"
#include "loom/nn/container.h"

namespace loom::models {

// What the data looks like: images (channels, height, width) or a feature vector of `features` values.
struct ModelSpec {
  int64_t channels = 1, height = 28, width = 28;
  int64_t features = 0;  // linreg only: input width
  int64_t num_classes = 10;
  // The hidden widths, first layer first; empty means the defaults (default_widths). Structured pruning
  // (`loom prune --method structured`) narrows them, and the run records them so the model is rebuilt narrow.
  std::vector<int64_t> widths;
};

// "linreg": Linear(features, 1)
// "mlp":    Flatten, Linear(C*H*W, 512), ReLU, Linear(512, 256), ReLU, Linear(256, classes)
// "lenet":  Conv2d(C, 6, 5, padding 2), ReLU, MaxPool2d(2), Conv2d(6, 16, 5), ReLU, MaxPool2d(2), Flatten,
//           Linear(16*h*w, 120), ReLU, Linear(120, 84), ReLU, Linear(84, classes)
// "cnn":    Conv2d(C, 32, 3), ReLU, MaxPool2d(2), Conv2d(32, 64, 3), ReLU, MaxPool2d(2), Flatten,
//           Linear(64*h*w, 64), ReLU, Linear(64, classes)
// spec.widths, when given, replaces the widths (32, 64, 64 for the cnn) in order.
// Throws naming the model when the name is unknown, the widths do not fit it, or the input is too small for
// its convolutions.
std::shared_ptr<nn::Sequential> make_model(const std::string& name, const ModelSpec& spec);

// The hidden widths of each model as defined above: mlp {512, 256}, lenet {6, 16, 120, 84}, cnn {32, 64, 64}
// (output channels of the convolutions, then out_features of every Linear but the last); linreg {}.
std::vector<int64_t> default_widths(const std::string& name);

std::vector<std::string> model_names();
bool is_model_name(const std::string& name);
// linreg predicts a value (MSE loss); the others predict classes (cross-entropy).
bool is_regression(const std::string& name);
// The input of one forward pass with a leading batch dim: (batch, C, H, W), or (batch, features) for linreg.
Shape input_shape(const std::string& name, const ModelSpec& spec, int64_t batch = 1);

}  // namespace loom::models
