// The autograd graph. Each differentiable op's output points at a Node; a Node's `next` edges point at
// the nodes that produced its inputs (or at the AccumulateGrad of a leaf). backward() in engine.cpp walks
// this graph once, in reverse topological order.
#pragma once
#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "loom/core/tensor.h"

namespace loom::autograd {

struct Node;

struct Edge {
  std::shared_ptr<Node> fn;  // null: that input needs no gradient
  uint32_t input_nr = 0;     // which output of fn the gradient flows to
};

struct OutputMeta {
  Shape shape;
  DType dtype = DType::f32;
};

struct Node : std::enable_shared_from_this<Node> {
  std::vector<Edge> next;           // one per input of the op
  std::vector<OutputMeta> outputs;  // so missing output gradients can be filled with zeros
  uint64_t seq = 0;                 // creation order; later nodes run first in backward
  // Non-leaf tensors that asked for retain_grad(), by output index.
  std::vector<std::pair<uint32_t, std::weak_ptr<TensorImpl>>> retained;

  Node();
  virtual ~Node() = default;
  virtual std::string name() const = 0;
  // grads: one per output (never undefined: the engine fills zeros). Returns one per input (may be
  // undefined where the input needs no gradient).
  virtual std::vector<Tensor> apply(std::vector<Tensor>& grads) = 0;
  // Drops saved tensors after a backward without retain_graph.
  virtual void release() {}
};

// Gradients of a leaf are summed into leaf.grad. It runs as soon as its gradient is complete (highest
// priority, as PyTorch's accumulators do), so post hooks fire during backward: DistributedDataParallel
// starts all-reducing a bucket of gradients while the rest of backward still runs.
using PostAccumulateHook = std::function<void(const Tensor& leaf)>;

struct AccumulateGrad : Node {
  std::weak_ptr<TensorImpl> leaf;
  // Called after each accumulation into leaf.grad (like torch's register_post_accumulate_grad_hook). A
  // hook lives as long as this node: hold the node (gradient_edge(leaf).fn) to keep it across backwards.
  std::vector<PostAccumulateHook> post_hooks;
  AccumulateGrad();
  std::string name() const override { return "AccumulateGrad"; }
  std::vector<Tensor> apply(std::vector<Tensor>& grads) override;
};

// The node type every op uses: the backward is a closure written next to the forward.
using BackwardFn = std::function<std::vector<Tensor>(const std::vector<Tensor>& grads)>;

struct FunctionNode : Node {
  std::string op;
  BackwardFn fn;
  bool released = false;
  std::string name() const override { return op + "Backward"; }
  std::vector<Tensor> apply(std::vector<Tensor>& grads) override;
  void release() override;
};

// The edge a gradient for `t` should flow along (null fn if t needs none).
Edge gradient_edge(const Tensor& t);

// Runs backward from `roots` (seeded with `grads`); gradients land in leaves' .grad.
void run_backward(const std::vector<Tensor>& roots, const std::vector<Tensor>& grads, bool retain_graph);

}  // namespace loom::autograd
