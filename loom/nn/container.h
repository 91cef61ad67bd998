// Containers, like torch.nn.Sequential and torch.nn.ModuleList. Children are named "0", "1", ... so
// state-dict keys match PyTorch's ("0.weight", "3.bias").
//   nn::Sequential net(nn::Linear({.in = 784, .out = 128}), nn::ReLU(), nn::Linear({.in = 128, .out = 10}));
//   Tensor logits = net(x);                        // each layer's output feeds the next
//   auto fc = net.at<nn::Linear>(0);  net.push_back(nn::LogSoftmax({.dim = 1}));
#pragma once
#include <concepts>
#include <initializer_list>
#include <memory>
#include <type_traits>
#include <vector>

#include "loom/nn/module.h"

namespace loom::nn {

namespace detail {
template <class T> struct is_shared_module : std::false_type {};
template <class M> struct is_shared_module<std::shared_ptr<M>> : std::bool_constant<std::derived_from<M, Module>> {};
// A container element: a shared_ptr to a module, or a module object moved in (modules are not copyable).
template <class A>
concept ModuleArg = is_shared_module<std::remove_cvref_t<A>>::value ||
                    (std::derived_from<std::remove_cvref_t<A>, Module> && !std::is_lvalue_reference_v<A>);

template <class A>
ModulePtr to_module_ptr(A&& a) {
  if constexpr (is_shared_module<std::remove_cvref_t<A>>::value) return a;
  else return std::make_shared<std::remove_cvref_t<A>>(std::forward<A>(a));
}

// Python's index rules: -1 is the last element. Throws naming the container on out-of-range.
size_t wrap_index(int64_t i, size_t n, const Module& owner);
}  // namespace detail

// Indexed access shared by Sequential and ModuleList.
class ModuleSequence : public Module {
 public:
  size_t size() const { return named_children().size(); }
  bool empty() const { return size() == 0; }
  ModulePtr operator[](int64_t i) const { return named_children()[detail::wrap_index(i, size(), *this)].second; }
  // The i-th module as its concrete type; throws when it is another type.
  template <class M>
  std::shared_ptr<M> at(int64_t i) const {
    auto p = std::dynamic_pointer_cast<M>((*this)[i]);
    LOOM_CHECK(p != nullptr, name(), ": element ", i, " is a ", (*this)[i]->name(), ", not the type asked for");
    return p;
  }
  auto begin() const { return named_children().begin(); }
  auto end() const { return named_children().end(); }
  // Appends under the next index as name.
  template <detail::ModuleArg A>
  void push_back(A&& m) {
    add_child(std::to_string(size()), detail::to_module_ptr(std::forward<A>(m)));
  }
};

class Sequential : public ModuleSequence {
 public:
  Sequential() = default;
  Sequential(std::initializer_list<ModulePtr> modules);
  explicit Sequential(const std::vector<ModulePtr>& modules);
  // Modules by value or shared_ptr. (A lone Sequential rvalue is a move, not nesting: wrap it in a shared_ptr.)
  template <detail::ModuleArg... As>
    requires(sizeof...(As) > 0)
  explicit Sequential(As&&... modules) {
    (push_back(std::forward<As>(modules)), ...);
  }
  // Appends under a chosen name (PyTorch's Sequential(OrderedDict(...)) form).
  Sequential& add(const std::string& name, ModulePtr m);
  Tensor forward(const Tensor& x) override;
};

// Holds modules without defining a forward: the owner decides how to call them.
class ModuleList : public ModuleSequence {
 public:
  ModuleList() = default;
  ModuleList(std::initializer_list<ModulePtr> modules);
  explicit ModuleList(const std::vector<ModulePtr>& modules);
  template <detail::ModuleArg... As>
    requires(sizeof...(As) > 0)
  explicit ModuleList(As&&... modules) {
    (push_back(std::forward<As>(modules)), ...);
  }
  void extend(const std::vector<ModulePtr>& modules);
};

}  // namespace loom::nn
