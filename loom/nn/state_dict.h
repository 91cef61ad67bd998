// StateDict: an ordered name -> tensor map, like the OrderedDict that torch's state_dict() returns. Keys keep
// insertion order (parameters and buffers in registration order, module by module), so a checkpoint lists its
// tensors in the same order as PyTorch's for the same architecture.
//   nn::StateDict sd = model.state_dict();
//   for (const auto& [key, t] : sd) std::cout << key << " " << t.shape() << "\n";
//   Tensor w = sd.at("0.weight");
#pragma once
#include <string>
#include <unordered_map>
#include <utility>
#include <vector>

#include "loom/core/tensor.h"

namespace loom::nn {

class StateDict {
 public:
  using Item = std::pair<std::string, Tensor>;

  StateDict() = default;
  StateDict(std::initializer_list<Item> items);

  // Adds `key`, or replaces its tensor in place (keeping its position) when it is already there.
  void insert(const std::string& key, const Tensor& value);
  bool contains(const std::string& key) const { return index_.count(key) != 0; }
  // Throws loom::Error naming the key when it is absent.
  const Tensor& at(const std::string& key) const;
  // nullptr when absent.
  const Tensor* find(const std::string& key) const;
  // Returns whether the key was there.
  bool erase(const std::string& key);

  std::vector<std::string> keys() const;
  size_t size() const { return items_.size(); }
  bool empty() const { return items_.empty(); }
  auto begin() const { return items_.begin(); }
  auto end() const { return items_.end(); }
  const std::vector<Item>& items() const { return items_; }

 private:
  std::vector<Item> items_;
  std::unordered_map<std::string, size_t> index_;
};

}  // namespace loom::nn
