// Module::summary: a Keras-style table built from one forward pass. Hooks on the leaf modules record each
// layer's output shape in call order, which also covers models whose forward is custom code rather than a
// Sequential (a walk of the module tree could not know the shapes).
#include <algorithm>
#include <sstream>

#include "loom/autograd/grad_mode.h"
#include "loom/nn/module.h"
#include "loom/nn/repr.h"
#include "loom/ops/creation.h"

namespace loom::nn {

namespace {

struct Row {
  std::string layer, shape, params;
};

std::string shape_str(const Shape& s) {
  std::ostringstream os;
  loom::operator<<(os, s);
  return os.str();
}

}  // namespace

std::string Module::summary(const Shape& input_shape, std::optional<DType> input_dtype) {
  DType dt = DType::f32;
  if (input_dtype) {
    dt = *input_dtype;
  } else {
    for (const auto& p : parameters())
      if (is_floating(p.dtype())) {
        dt = p.dtype();
        break;
      }
  }

  std::vector<Row> rows;
  std::vector<std::pair<Module*, int64_t>> hooked;
  std::vector<std::pair<Module*, bool>> modes;
  for (auto& [path, m] : named_modules()) {
    modes.emplace_back(m, m->is_training());
    if (!m->children_.empty()) continue;  // rows are leaf layers (the root only when it is a single layer)
    const std::string label = path.empty() ? name() : path + " (" + m->name() + ")";
    const int64_t id = m->register_forward_hook([&rows, label](Module& mod, const Tensor&, const Tensor& y) {
      rows.push_back({label, shape_str(y.shape()), group_digits(mod.num_parameters())});
    });
    hooked.emplace_back(m, id);
  }
  auto restore = [&] {
    for (auto& [m, id] : hooked) m->remove_forward_hook(id);
    for (auto& [m, on] : modes) m->training_ = on;
  };
  // Eval mode so BatchNorm's running statistics and dropout are untouched by the probe.
  for (auto& [m, on] : modes) m->training_ = false;
  try {
    NoGradGuard g;
    (*this)(zeros(input_shape, {.dtype = dt}));
  } catch (...) {
    restore();
    throw;
  }
  restore();

  const int64_t total = num_parameters(), trainable = num_parameters(true);
  size_t w0 = std::string("Layer (type)").size(), w1 = std::string("Output Shape").size(), w2 = 7;
  for (const auto& r : rows) {
    w0 = std::max(w0, r.layer.size());
    w1 = std::max(w1, r.shape.size());
    w2 = std::max(w2, r.params.size());
  }
  w0 += 4;
  w1 += 4;
  const size_t width = 1 + w0 + w1 + w2;
  auto pad = [](const std::string& s, size_t w) { return s + std::string(w > s.size() ? w - s.size() : 0, ' '); };
  std::ostringstream os;
  os << "Model: \"" << name() << "\"\n" << std::string(width, '_') << "\n";
  os << " " << pad("Layer (type)", w0) << pad("Output Shape", w1) << "Param #\n" << std::string(width, '=') << "\n";
  for (const auto& r : rows) os << " " << pad(r.layer, w0) << pad(r.shape, w1) << r.params << "\n";
  os << std::string(width, '=') << "\n";
  os << "Total params: " << group_digits(total) << "\n";
  os << "Trainable params: " << group_digits(trainable) << "\n";
  os << "Non-trainable params: " << group_digits(total - trainable) << "\n";
  os << std::string(width, '_') << "\n";
  return os.str();
}

}  // namespace loom::nn
