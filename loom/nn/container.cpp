#include "loom/nn/container.h"

#include <typeinfo>

#include "loom/autograd/function.h"
#include "loom/nn/activation.h"
#include "loom/nn/conv_layers.h"
#include "loom/nn/pooling.h"
#include "loom/ops/conv.h"

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

// A Conv2d -> ReLU -> MaxPool2d run on an input that needs no gradient (a network's first layer), through
// loom::conv2d_relu_max_pool2d; false (nothing run) when it is not that, so the pairs below take over. The
// conv's own checks run first by running it unfused on inputs it would reject.
bool run_conv_relu_pool(Module& a, Module& b, Module& c, const Tensor& x, Tensor& out) {
  if (typeid(a) != typeid(Conv2d) || !fusable_relu_pool(b, c) || a.has_forward_hooks()) return false;
  auto& conv = static_cast<Conv2d&>(a);
  auto& pool = static_cast<MaxPool2d&>(c);
  if (x.dim() != 4 || x.size(1) != conv.options.in || autograd::needs_grad({x})) return false;
  const auto& co = conv.options;
  const auto& po = pool.options;
  out = conv2d_relu_max_pool2d(
      x, conv.weight, conv.bias,
      {.stride = co.stride.arr(), .padding = co.padding.arr(), .dilation = co.dilation.arr(), .groups = co.groups},
      {.kernel_size = po.kernel_size.arr(), .stride = po.stride.arr(), .padding = po.padding.arr(),
       .dilation = po.dilation.arr(), .ceil_mode = po.ceil_mode});
  return true;
}

}  // namespace

Tensor Sequential::forward(const Tensor& x) {
  // A ReLU feeding a MaxPool2d runs as loom::relu_max_pool2d: the same values and gradients in one pass over the
  // activation instead of four (the seed CNN's two pairs were a quarter of its training step). When a Conv2d on
  // the network's input feeds that pair, the three run as loom::conv2d_relu_max_pool2d: the convolution's output
  // never goes to memory, forward or backward.
  Tensor h = x;
  const auto& ch = named_children();
  for (size_t i = 0; i < ch.size(); ++i) {
    if (i + 2 < ch.size() && run_conv_relu_pool(*ch[i].second, *ch[i + 1].second, *ch[i + 2].second, h, h)) {
      i += 2;
      continue;
    }
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
