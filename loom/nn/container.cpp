#include "loom/nn/container.h"

#include <typeinfo>

#include "loom/nn/activation.h"
#include "loom/nn/pooling.h"

namespace loom::nn {

size_t detail::wrap_index(int64_t i, size_t n, const Module& owner) {
  const int64_t j = i < 0 ? i + int64_t(n) : i;
  LOOM_CHECK(j >= 0 && j < int64_t(n), owner.name(), ": index ", i, " is out of range for ", n, " modules");
  return size_t(j);
}

Sequential::Sequential(std::initializer_list<ModulePtr> modules) {
  for (const auto& m : modules) push_back(m);
}

Sequential::Sequential(const std::vector<ModulePtr>& modules) {
  for (const auto& m : modules) push_back(m);
}

Sequential& Sequential::add(const std::string& name, ModulePtr m) {
  add_child(name, std::move(m));
  return *this;
}

namespace {

// The MaxPool2d of a ReLU -> MaxPool2d pair that may run fused, else nullptr. Not when either has hooks (they
// must see the ReLU's own output) or is a subclass (it may override forward).
MaxPool2d* fusable_relu_pool(Module& a, Module& b) {
  if (typeid(a) != typeid(ReLU) || typeid(b) != typeid(MaxPool2d)) return nullptr;
  if (a.has_forward_hooks() || b.has_forward_hooks()) return nullptr;
  return static_cast<MaxPool2d*>(&b);
}

}  // namespace

Tensor Sequential::forward(const Tensor& x) {
  // A ReLU feeding a MaxPool2d runs as loom::relu_max_pool2d: the same values and gradients in one pass over the
  // activation instead of four (the seed CNN's two pairs were a quarter of its training step).
  Tensor h = x;
  const auto& ch = named_children();
  for (size_t i = 0; i < ch.size(); ++i) {
    if (i + 1 < ch.size()) {
      if (MaxPool2d* pool = fusable_relu_pool(*ch[i].second, *ch[i + 1].second)) {
        h = pool->forward_relu(h);
        ++i;
        continue;
      }
    }
    h = (*ch[i].second)(h);
  }
  return h;
}

ModuleList::ModuleList(std::initializer_list<ModulePtr> modules) {
  for (const auto& m : modules) push_back(m);
}

ModuleList::ModuleList(const std::vector<ModulePtr>& modules) { extend(modules); }

void ModuleList::extend(const std::vector<ModulePtr>& modules) {
  for (const auto& m : modules) push_back(m);
}

}  // namespace loom::nn
