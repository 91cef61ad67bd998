#include "loom/quant/quantize_dynamic.h"

#include <functional>

#include "loom/quant/int8_layers.h"
#include "loom/quant/quantized_linear.h"

namespace loom::quant {

namespace {

bool is_quantized(const nn::Module& m) {
  return dynamic_cast<const Int8Linear*>(&m) || dynamic_cast<const Int8Conv2d*>(&m) ||
         dynamic_cast<const QuantizedLinear*>(&m);
}

// The int8 replacement of a float layer (filled from its weights, or empty for loading); null for other modules.
nn::ModulePtr int8_version(const nn::Module& m, bool fill, int64_t min_conv_reduction = 0) {
  if (is_quantized(m)) return nullptr;
  if (const auto* fc = dynamic_cast<const nn::Linear*>(&m))
    return fill ? nn::ModulePtr(Int8Linear::from_linear(*fc)) : nn::ModulePtr(std::make_shared<Int8Linear>(fc->options));
  if (const auto* conv = dynamic_cast<const nn::Conv2d*>(&m)) {
    const auto& o = conv->options;
    if (o.groups != 1 || o.in * o.kernel_size.h * o.kernel_size.w < min_conv_reduction) return nullptr;
    return fill ? nn::ModulePtr(Int8Conv2d::from_conv(*conv)) : nn::ModulePtr(std::make_shared<Int8Conv2d>(conv->options));
  }
  return nullptr;
}

}  // namespace

std::vector<std::string> quantize_dynamic(nn::Module& model, const DynamicOptions& options) {
  std::vector<std::string> names;
  std::function<void(nn::Module&, const std::string&)> walk = [&](nn::Module& parent, const std::string& prefix) {
    // Copy the list: registering a replacement edits it.
    const auto children = parent.named_children();
    for (const auto& [name, child] : children) {
      const std::string path = prefix.empty() ? name : prefix + "." + name;
      if (auto q = int8_version(*child, true, options.min_conv_reduction)) {
        q->train(child->is_training());
        parent.register_module(name, q);
        names.push_back(path);
      } else {
        walk(*child, path);
      }
    }
  };
  walk(model, "");
  return names;
}

std::vector<std::string> int8_layers_in(const nn::StateDict& sd) {
  static const std::string suffix = ".weight_int8";
  std::vector<std::string> names;
  for (const auto& [key, t] : sd)
    if (key.size() > suffix.size() && key.ends_with(suffix)) names.push_back(key.substr(0, key.size() - suffix.size()));
  return names;
}

void prepare_int8(nn::Module& model, const std::vector<std::string>& names) {
  for (const std::string& path : names) {
    const size_t dot = path.rfind('.');
    nn::ModulePtr parent_ptr = dot == std::string::npos ? nullptr : model.get_submodule(path.substr(0, dot));
    nn::Module& parent = parent_ptr ? *parent_ptr : model;
    const std::string name = dot == std::string::npos ? path : path.substr(dot + 1);
    nn::ModulePtr child = model.get_submodule(path);  // throws naming the path when absent
    if (dynamic_cast<const Int8Linear*>(child.get()) || dynamic_cast<const Int8Conv2d*>(child.get())) continue;
    nn::ModulePtr q = int8_version(*child, false);
    LOOM_CHECK(q != nullptr, "int8 weights for '", path, "', but the model's layer there is ", child->repr(),
               " (only Linear and Conv2d with groups=1 are quantized to int8)");
    q->train(child->is_training());
    parent.register_module(name, q);
  }
}

}  // namespace loom::quant
