// Module: the base of every layer and model, with PyTorch's semantics (torch.nn.Module).
//   struct Net : nn::Module {
//     std::shared_ptr<nn::Linear> fc = register_module("fc", std::make_shared<nn::Linear>(nn::LinearOptions{4, 2}));
//     Tensor forward(const Tensor& x) override { return (*fc)(x).relu(); }
//   };
//   Net net;  net.named_parameters();  // {"fc.weight", "fc.bias"}   net.eval();  std::cout << net;
//
// Parameters, buffers and submodules are registered by name; every query that walks the tree (parameters(),
// state_dict(), train(), to(), ...) goes through those registries, so a layer stores its tensors as plain
// members (`Tensor weight`) that share storage with the registered handle. Call submodules with
// operator() (not forward()) so forward hooks, and with them summary(), see the call.
#pragma once
#include <functional>
#include <memory>
#include <optional>
#include <ostream>
#include <string>
#include <tuple>
#include <utility>
#include <vector>

#include "loom/core/tensor.h"
#include "loom/nn/state_dict.h"

namespace loom::nn {

class Module;
using ModulePtr = std::shared_ptr<Module>;
using NamedTensors = std::vector<std::pair<std::string, Tensor>>;

// Called after a module's forward with its input and output (summary() uses these).
using ForwardHook = std::function<void(Module& module, const Tensor& input, const Tensor& output)>;
// Called before a module's forward with its input (pruning recomputes `weight` from weight_orig * weight_mask
// in one, as torch.nn.utils.prune does).
using ForwardPreHook = std::function<void(Module& module, const Tensor& input)>;

// What load_state_dict(..., strict = false) could not match.
struct LoadResult {
  std::vector<std::string> missing_keys;     // in the model, absent from the dict
  std::vector<std::string> unexpected_keys;  // in the dict, absent from the model
};

class Module {
 public:
  Module() = default;
  virtual ~Module() = default;
  // Copying would leave two modules sharing parameters silently; moving is fine (tensors are handles).
  Module(const Module&) = delete;
  Module& operator=(const Module&) = delete;
  Module(Module&&) = default;
  Module& operator=(Module&&) = default;

  // ---- forward
  // The computation. The default throws: containers such as ModuleList have none.
  virtual Tensor forward(const Tensor& x);
  // The forward pre-hooks, forward(), then the forward hooks.
  Tensor operator()(const Tensor& x);

  // ---- registration (names may not be empty or contain '.'; registering a name again replaces it)
  // Registers `t` (detached, so it is a leaf) as a parameter with requires_grad set; returns the handle to
  // keep as a member. An undefined tensor registers an absent optional parameter (e.g. bias=False).
  Tensor register_parameter(const std::string& name, const Tensor& t, bool requires_grad = true);
  // Buffers are state that is not trained (BatchNorm's running_mean); non-persistent ones stay out of
  // state_dict(). An undefined tensor registers an absent buffer.
  Tensor register_buffer(const std::string& name, const Tensor& t, bool persistent = true);
  // Unregisters a parameter or buffer (Python's `del module._parameters[name]`) and returns it; the layer's
  // member keeps its handle. Throws naming the module when there is none by that name.
  Tensor delete_parameter(const std::string& name);
  Tensor delete_buffer(const std::string& name);
  template <class M>
  std::shared_ptr<M> register_module(const std::string& name, std::shared_ptr<M> m) {
    add_child(name, m);
    return m;
  }

  // ---- queries. Recursive ones use PyTorch's dotted names ("features.3.bias") and order: a module's own
  // entries in registration order, then each child's; a tensor or module reached twice is listed once.
  std::vector<Tensor> parameters(bool recurse = true) const;
  NamedTensors named_parameters(bool recurse = true) const;
  std::vector<Tensor> buffers(bool recurse = true) const;
  NamedTensors named_buffers(bool recurse = true) const;
  std::vector<ModulePtr> children() const;
  const std::vector<std::pair<std::string, ModulePtr>>& named_children() const { return children_; }
  // This module first, then every descendant (non-owning pointers, valid while this module lives).
  std::vector<Module*> modules();
  std::vector<std::pair<std::string, Module*>> named_modules(const std::string& prefix = "");
  // By dotted path; throw loom::Error naming the path when absent.
  Tensor get_parameter(const std::string& path) const;
  Tensor get_buffer(const std::string& path) const;
  ModulePtr get_submodule(const std::string& path) const;

  // ---- state
  // Parameters and persistent buffers, recursively, as PyTorch orders and names them. The tensors share
  // storage with the model (detached): clone them to keep a snapshot.
  StateDict state_dict() const;
  // Copies values into the model's tensors (converting dtype). Shape mismatches always throw; missing or
  // unexpected keys throw when strict. Nothing is copied when it throws. The message names the module
  // type, the keys and the shapes.
  LoadResult load_state_dict(const StateDict& dict, bool strict = true);

  // ---- modes and bulk operations (all recursive)
  virtual void train(bool on = true);
  void eval() { train(false); }
  bool is_training() const { return training_; }
  // set_to_none = false zeroes existing gradients (the default of the PyTorch 1.13 we test against);
  // true drops them (PyTorch 2's default), which also saves the memory until the next backward.
  void zero_grad(bool set_to_none = false);
  int64_t num_parameters(bool trainable_only = false) const;
  // Converts every floating point parameter and buffer (and existing gradients) in place.
  Module& to(DType dtype);
  // Moves every parameter and buffer (and existing gradients) to `device` in place; already there: no-op.
  Module& to(Device device);
  Module& requires_grad_(bool on = true);
  void apply(const std::function<void(Module&)>& fn);

  // ---- hooks
  int64_t register_forward_hook(ForwardHook hook);
  void remove_forward_hook(int64_t id);
  int64_t register_forward_pre_hook(ForwardPreHook hook);
  void remove_forward_pre_hook(int64_t id);
  // The pre-hooks' ids, oldest first, and a hook by id (nullptr when absent): its owner recovers its own callable
  // with target<T>(), as torch finds its pruning hooks by isinstance.
  std::vector<int64_t> forward_pre_hook_ids() const;
  // True when any forward or pre-hook is registered (containers then call the module itself, never fuse it).
  bool has_forward_hooks() const { return !hooks_.empty() || !pre_hooks_.empty(); }
  ForwardPreHook* forward_pre_hook(int64_t id);

  // ---- printing
  // The class name ("Linear"); the default derives it from the C++ type.
  virtual std::string name() const;
  // The text inside the parentheses, as PyTorch's extra_repr ("in_features=784, out_features=10, bias=True").
  virtual std::string extra_repr() const { return ""; }
  // PyTorch's repr: the name, extra_repr and one indented "(child): ..." line per submodule.
  std::string repr() const;
  // A Keras-style table: one row per leaf layer (name (type), output shape, parameters) with totals,
  // from a forward pass on zeros of `input_shape` (batch dim included) in eval mode without gradients.
  // The input dtype defaults to the dtype of the first floating point parameter (float32 without any).
  std::string summary(const Shape& input_shape, std::optional<DType> input_dtype = std::nullopt);

 protected:
  void add_child(const std::string& name, ModulePtr m);

 private:
  struct Buffer {
    std::string name;
    Tensor value;
    bool persistent = true;
  };
  void check_new_name(const std::string& name, const char* what) const;
  void collect_state(const std::string& prefix, std::vector<std::tuple<std::string, Tensor, const Module*>>& out) const;

  bool training_ = true;
  std::vector<std::pair<std::string, Tensor>> params_;
  std::vector<Buffer> buffers_;
  std::vector<std::pair<std::string, ModulePtr>> children_;
  std::vector<std::pair<int64_t, ForwardHook>> hooks_;
  std::vector<std::pair<int64_t, ForwardPreHook>> pre_hooks_;
  int64_t next_hook_id_ = 0;
};

std::ostream& operator<<(std::ostream& os, const Module& m);

}  // namespace loom::nn
