// The backward engine: one pass over the graph reachable from the roots. Dependencies are counted
// first, then nodes run when all their gradient inputs have arrived, latest-created first (a valid
// reverse topological order that keeps memory low, as PyTorch's engine does).
#include <queue>
#include <unordered_map>

#include "loom/autograd/function.h"
#include "loom/autograd/grad_mode.h"

namespace loom::autograd {

namespace {
struct BySeq {
  bool operator()(const Node* a, const Node* b) const { return a->seq < b->seq; }
};
}  // namespace

void run_backward(const std::vector<Tensor>& roots, const std::vector<Tensor>& grads, bool retain_graph) {
  NoGradGuard no_grad;
  std::unordered_map<Node*, int> deps;
  std::unordered_map<Node*, std::vector<Tensor>> buffers;
  std::vector<std::shared_ptr<Node>> keep_alive;

  // Count how many edges point at each node.
  std::vector<Node*> stack;
  std::unordered_map<Node*, bool> seen;
  for (const auto& r : roots) {
    Edge e = gradient_edge(r);
    if (e.fn && !seen[e.fn.get()]) { seen[e.fn.get()] = true; stack.push_back(e.fn.get()); keep_alive.push_back(e.fn); }
  }
  while (!stack.empty()) {
    Node* n = stack.back();
    stack.pop_back();
    for (auto& e : n->next) {
      if (!e.fn) continue;
      deps[e.fn.get()] += 1;
      if (!seen[e.fn.get()]) { seen[e.fn.get()] = true; stack.push_back(e.fn.get()); }
    }
  }

  auto accumulate = [&](Node* n, uint32_t slot, Tensor g) {
    auto& buf = buffers[n];
    if (buf.empty()) buf.resize(n->outputs.size());
    if (!buf[slot].defined()) buf[slot] = std::move(g);
    else buf[slot] = buf[slot] + g;
  };

  std::priority_queue<Node*, std::vector<Node*>, BySeq> ready;
  for (size_t i = 0; i < roots.size(); ++i) {
    Edge e = gradient_edge(roots[i]);
    if (!e.fn) continue;
    accumulate(e.fn.get(), e.input_nr, grads[i]);
  }
  std::unordered_map<Node*, bool> queued;
  for (const auto& r : roots) {
    Edge e = gradient_edge(r);
    if (e.fn && deps[e.fn.get()] == 0 && !queued[e.fn.get()]) {
      queued[e.fn.get()] = true;
      ready.push(e.fn.get());
    }
  }

  while (!ready.empty()) {
    Node* n = ready.top();
    ready.pop();
    std::vector<Tensor> in = std::move(buffers[n]);
    buffers.erase(n);
    in.resize(n->outputs.size());
    for (size_t i = 0; i < in.size(); ++i) {
      if (!in[i].defined()) {
        Tensor z = make_tensor(n->outputs[i].shape, n->outputs[i].dtype);
        z.zero_();
        in[i] = z;
      }
    }
    for (auto& [slot, weak] : n->retained)
      if (auto impl = weak.lock()) impl->grad = in[slot].clone().impl_ptr();
    std::vector<Tensor> out = n->apply(in);
    if (!retain_graph) n->release();
    for (size_t i = 0; i < n->next.size(); ++i) {
      Edge& e = n->next[i];
      if (!e.fn) continue;
      if (i < out.size() && out[i].defined()) accumulate(e.fn.get(), e.input_nr, out[i]);
      if (--deps[e.fn.get()] == 0) ready.push(e.fn.get());
    }
  }
}

}  // namespace loom::autograd
