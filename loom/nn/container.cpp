#include "loom/nn/container.h"

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

Tensor Sequential::forward(const Tensor& x) {
  Tensor h = x;
  for (const auto& [k, m] : named_children()) h = (*m)(h);
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
