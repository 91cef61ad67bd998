#include "loom/autograd/function.h"

#include <atomic>

namespace loom::autograd {

static std::atomic<uint64_t> g_seq{0};
Node::Node() : seq(g_seq.fetch_add(1)) {}

bool needs_grad(const std::vector<Tensor>& ts) {
  if (!grad_enabled()) return false;
  for (const auto& t : ts)
    if (t.defined() && t.requires_grad()) return true;
  return false;
}

SavedTensor::SavedTensor(const Tensor& t, const char* op) : op_(op) {
  if (!t.defined()) return;
  t_ = t.detach();
  version_ = t.version();
}

const Tensor& SavedTensor::get() const {
  LOOM_CHECK(!t_.defined() || t_.version() == version_,
             "one of the variables needed for gradient computation has been modified by an inplace operation: "
             "a tensor of shape ", t_.shape(), " saved by ", (op_[0] ? op_ : "an op"), " is at version ", t_.version(),
             "; expected version ", version_, " instead. Use an out-of-place op (or .clone()) before modifying it.");
  return t_;
}

Edge gradient_edge(const Tensor& t) {
  if (!t.defined() || !t.requires_grad()) return {};
  TensorImpl* impl = t.impl();
  if (impl->grad_fn) return {impl->grad_fn, impl->output_nr};
  std::shared_ptr<Node> acc = impl->grad_accumulator.lock();
  if (!acc) {
    auto a = std::make_shared<AccumulateGrad>();
    a->leaf = t.impl_ptr();
    a->outputs.push_back({t.shape(), t.dtype()});
    impl->grad_accumulator = a;
    acc = a;
  }
  return {acc, 0};
}

void record(const char* op, const std::vector<Tensor>& outputs, const std::vector<Tensor>& inputs, BackwardFn fn) {
  auto node = std::make_shared<FunctionNode>();
  node->op = op;
  node->fn = std::move(fn);
  node->next.reserve(inputs.size());
  for (const auto& in : inputs) node->next.push_back(gradient_edge(in));
  for (uint32_t i = 0; i < outputs.size(); ++i) {
    TensorImpl* o = outputs[i].impl();
    node->outputs.push_back({o->shape, o->dtype});
    if (!is_floating(o->dtype)) continue;  // integer outputs (indices) carry no gradient
    o->grad_fn = node;
    o->output_nr = i;
    o->requires_grad = true;
  }
}

std::vector<Tensor> FunctionNode::apply(std::vector<Tensor>& grads) {
  LOOM_CHECK(!released, "Trying to backward through the graph a second time (or directly access saved tensors after "
             "they have already been freed) at ", name(), ". Specify retain_graph=true on the first backward.");
  return fn(grads);
}

void FunctionNode::release() {
  fn = nullptr;
  released = true;
}

AccumulateGrad::AccumulateGrad() { seq = UINT64_MAX; }

std::vector<Tensor> AccumulateGrad::apply(std::vector<Tensor>& grads) {
  auto impl = leaf.lock();
  if (!impl) return {};
  Tensor g = grads[0];
  LOOM_CHECK(g.shape() == impl->shape, "backward: gradient of shape ", g.shape(), " for a leaf of shape ", impl->shape);
  if (g.dtype() != impl->dtype) g = g.to(impl->dtype);
  if (impl->grad) {
    Tensor(impl->grad).add_(g);
  } else {
    // Own the memory: the incoming gradient may alias a buffer another node still uses.
    impl->grad = g.contiguous().is_same(g) ? g.clone().impl_ptr() : g.contiguous().impl_ptr();
  }
  if (!post_hooks.empty()) {
    const Tensor leaf_tensor(impl);
    for (auto& h : post_hooks) h(leaf_tensor);
  }
  return {};
}

}  // namespace loom::autograd
