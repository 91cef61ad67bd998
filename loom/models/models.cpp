// Layer indices matter: they are the state-dict keys, so the layer lists below mirror PyTorch's
// nn.Sequential definitions in the reference scripts one for one (ReLU and pooling take an index too).
#include "loom/models/models.h"

#include <algorithm>

#include "loom/core/limits.h"
#include "loom/nn/nn.h"

namespace loom::models {

namespace {

using nn::Conv2d, nn::Flatten, nn::Linear, nn::MaxPool2d, nn::ReLU;

// The spatial size after a valid (unpadded) k x k convolution and a 2x2 max-pool, checked to stay positive.
int64_t conv_pool(int64_t size, int64_t k, int64_t pad, const std::string& model) {
  const int64_t conv = size + 2 * pad - k + 1;
  LOOM_CHECK(conv >= 2, model, ": the input is too small (", size, " pixels) for a ", k, "x", k,
             " convolution followed by 2x2 pooling");
  return conv / 2;
}

void check_images(const ModelSpec& s, const std::string& model) {
  LOOM_CHECK(s.channels > 0 && s.height > 0 && s.width > 0, model, ": the input must be an image (C, H, W), got ",
             s.channels, "x", s.height, "x", s.width);
  LOOM_CHECK(s.num_classes >= 2, model, ": needs at least 2 classes, got ", s.num_classes);
  // Bounds before any allocation: the sizes may come from a file's metadata or a flag.
  check_size(model + ": input channels", s.channels, 1, 4);
  check_size(model + ": input height", s.height, 1, limits::kMaxImageSide);
  check_size(model + ": input width", s.width, 1, limits::kMaxImageSide);
  check_size(model + ": number of classes", s.num_classes, 2, limits::kMaxClasses);
}

// A model's parameter count from its spec, before building it (the big layer is the first Linear).
double estimate_parameters(const std::string& name, const ModelSpec& s) {
  if (name == "linreg") return double(s.features) + 1;
  const double pixels = double(s.channels) * double(s.height) * double(s.width);
  if (name == "mlp") return pixels * 512 + 512 * 256 + 256 * double(s.num_classes);
  // lenet, cnn: the first Linear sees 16 or 64 channels of (H/4, W/4): at most 256 weights per input pixel.
  return 256.0 * double(s.height) * double(s.width) + 120.0 * double(s.num_classes) + 1e5;
}

}  // namespace

std::vector<int64_t> default_widths(const std::string& name) {
  if (name == "mlp") return {512, 256};
  if (name == "lenet") return {6, 16, 120, 84};
  if (name == "cnn") return {32, 64, 64};
  return {};
}

std::vector<std::string> model_names() { return {"linreg", "mlp", "lenet", "cnn"}; }

bool is_model_name(const std::string& name) {
  const auto names = model_names();
  return std::find(names.begin(), names.end(), name) != names.end();
}

bool is_regression(const std::string& name) { return name == "linreg"; }

Shape input_shape(const std::string& name, const ModelSpec& spec, int64_t batch) {
  if (is_regression(name)) return {batch, spec.features};
  return {batch, spec.channels, spec.height, spec.width};
}

std::shared_ptr<nn::Sequential> make_model(const std::string& name, const ModelSpec& s) {
  auto m = std::make_shared<nn::Sequential>();
  if (is_model_name(name)) {
    if (name == "linreg") check_size("linreg: input features", s.features, 1, limits::kMaxFeatures);
    else check_images(s, name);
    // The f32 weights, twice (initialisation or loading holds a second copy), must fit in the available memory.
    const std::string in = name == "linreg" ? std::to_string(s.features) + " features"
                                            : std::to_string(s.channels) + "x" + std::to_string(s.height) + "x" +
                                                  std::to_string(s.width) + " images";
    check_fits_in_memory(8.0 * estimate_parameters(name, s), "a " + name + " model for " + in);
  }
  std::vector<int64_t> w = default_widths(name);
  if (!s.widths.empty()) {
    LOOM_CHECK(s.widths.size() == w.size(), name, ": expected ", w.size(), " widths (hidden layer sizes), got ",
               s.widths.size());
    for (size_t i = 0; i < w.size(); ++i) {
      // Pruning only narrows a model; the bound keeps a malformed file from asking for a huge allocation.
      check_size(name + ": width " + std::to_string(i), s.widths[i], 1, w[i]);
      w[i] = s.widths[i];
    }
  }
  if (name == "linreg") {
    LOOM_CHECK(s.features > 0, "linreg: the number of input features must be positive, got ", s.features);
    m->push_back(Linear({.in = s.features, .out = 1}));
  } else if (name == "mlp") {
    check_images(s, name);
    m->push_back(Flatten());
    m->push_back(Linear({.in = s.channels * s.height * s.width, .out = w[0]}));
    m->push_back(ReLU());
    m->push_back(Linear({.in = w[0], .out = w[1]}));
    m->push_back(ReLU());
    m->push_back(Linear({.in = w[1], .out = s.num_classes}));
  } else if (name == "lenet") {
    check_images(s, name);
    const int64_t h = conv_pool(conv_pool(s.height, 5, 2, name), 5, 0, name);
    const int64_t wd = conv_pool(conv_pool(s.width, 5, 2, name), 5, 0, name);
    m->push_back(Conv2d({.in = s.channels, .out = w[0], .kernel_size = 5, .padding = 2}));
    m->push_back(ReLU());
    m->push_back(MaxPool2d({.kernel_size = 2}));
    m->push_back(Conv2d({.in = w[0], .out = w[1], .kernel_size = 5}));
    m->push_back(ReLU());
    m->push_back(MaxPool2d({.kernel_size = 2}));
    m->push_back(Flatten());
    m->push_back(Linear({.in = w[1] * h * wd, .out = w[2]}));
    m->push_back(ReLU());
    m->push_back(Linear({.in = w[2], .out = w[3]}));
    m->push_back(ReLU());
    m->push_back(Linear({.in = w[3], .out = s.num_classes}));
  } else if (name == "cnn") {
    check_images(s, name);
    const int64_t h = conv_pool(conv_pool(s.height, 3, 0, name), 3, 0, name);
    const int64_t wd = conv_pool(conv_pool(s.width, 3, 0, name), 3, 0, name);
    m->push_back(Conv2d({.in = s.channels, .out = w[0], .kernel_size = 3}));
    m->push_back(ReLU());
    m->push_back(MaxPool2d({.kernel_size = 2}));
    m->push_back(Conv2d({.in = w[0], .out = w[1], .kernel_size = 3}));
    m->push_back(ReLU());
    m->push_back(MaxPool2d({.kernel_size = 2}));
    m->push_back(Flatten());
    m->push_back(Linear({.in = w[1] * h * wd, .out = w[2]}));
    m->push_back(ReLU());
    m->push_back(Linear({.in = w[2], .out = s.num_classes}));
  } else {
    LOOM_FAIL("unknown model '", name, "' (known: linreg, mlp, lenet, cnn)");
  }
  return m;
}

}  // namespace loom::models
