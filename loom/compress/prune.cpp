// Applying masks to modules. torch re-binds `module.weight = weight_orig * weight_mask` from a forward pre-hook;
// a loom layer computes with its member `Tensor weight`, which shares one TensorImpl with the handle the module
// registered. So the hook keeps that handle (the "slot") and re-points the shared TensorImpl at the product
// before every forward: the layer then multiplies with the masked weight and autograd carries the gradient
// through the mask to weight_orig.
#include "loom/compress/prune.h"

#include <cmath>
#include <functional>
#include <utility>

#include "loom/autograd/grad_mode.h"
#include "loom/compress/prune_masks.h"
#include "loom/core/error.h"
#include "loom/core/tensor_impl.h"
#include "loom/ops/creation.h"
#include "loom/ops/elementwise.h"
#include "loom/ops/shape.h"

namespace loom::compress::prune {

namespace {

// Re-points the slot's TensorImpl at `value`'s data and autograd history, as torch's setattr rebinds the
// attribute. The old data stays alive for any graph that saved it.
void rebind(const Tensor& slot, const Tensor& value) {
  TensorImpl* d = slot.impl();
  const TensorImpl* s = value.impl();
  d->storage = s->storage;
  d->shape = s->shape;
  d->strides = s->strides;
  d->offset = s->offset;
  d->dtype = s->dtype;
  d->requires_grad = s->requires_grad;
  d->is_view = s->is_view;
  d->grad_fn = s->grad_fn;
  d->output_nr = s->output_nr;
  d->grad.reset();
  d->retains_grad = false;
  d->grad_accumulator.reset();
}

std::string orig_name(const std::string& name) { return name + "_orig"; }
std::string mask_name(const std::string& name) { return name + "_mask"; }

// Recomputes the layer's tensor from weight_orig * weight_mask (under the caller's grad mode).
void refresh(nn::Module& m, const std::string& name, const Tensor& slot) {
  rebind(slot, mul(m.get_parameter(orig_name(name)), m.get_buffer(mask_name(name))));
}

// The forward pre-hook of one pruned tensor; found again by its type (std::function::target), as torch finds
// its BasePruningMethod hooks by isinstance.
struct PruneHook {
  std::string name;
  Tensor slot;  // the handle the layer's member shares
  void operator()(nn::Module& m, const Tensor&) const { refresh(m, name, slot); }
};

std::pair<int64_t, PruneHook*> find_hook(nn::Module& m, const std::string& name) {
  for (int64_t id : m.forward_pre_hook_ids())
    if (auto* f = m.forward_pre_hook(id))
      if (auto* h = f->target<PruneHook>(); h && h->name == name) return {id, h};
  return {-1, nullptr};
}

Tensor own_parameter(nn::Module& m, const std::string& name, const char* method) {
  for (const auto& [k, t] : m.named_parameters(/*recurse=*/false))
    if (k == name) {
      LOOM_CHECK(is_floating(t.dtype()), method, ": ", m.name(), "'s parameter \"", name,
                 "\" is not floating point (", t.dtype(), ")");
      return t;
    }
  LOOM_FAIL(method, ": ", m.name(), " has no parameter \"", name, "\" to prune (its parameters: ",
            [&] {
              std::string s;
              for (const auto& [k, t] : m.named_parameters(false)) s += (s.empty() ? "" : ", ") + k;
              return s.empty() ? std::string("none") : s;
            }(),
            ")");
}

using ComputeMask = std::function<Tensor(const Tensor& importance, const Tensor& mask)>;

// torch's BasePruningMethod.apply: the first pruning of a tensor sets up weight_orig / weight_mask and the
// hook; a later one (torch's PruningContainer) computes the new mask from the current one.
void apply(nn::Module& m, const std::string& name, const char* method, const ComputeMask& compute) {
  auto [id, hook] = find_hook(m, name);
  Tensor slot, importance, mask;
  {
    NoGradGuard no_grad;
    if (hook) {
      mask = m.get_buffer(mask_name(name)).clone();
      importance = mul(m.get_parameter(orig_name(name)), mask);
    } else {
      slot = own_parameter(m, name, method);
      importance = slot.detach();
      mask = ones_like(slot);
    }
    // Computed before the module changes, so a bad amount leaves it as it was.
    mask = compute(importance, mask);
  }
  if (hook) {
    m.register_buffer(mask_name(name), mask);
    refresh(m, name, hook->slot);
    return;
  }
  for (const auto& [k, t] : m.named_parameters(false))
    LOOM_CHECK(k != orig_name(name), method, ": ", m.name(), " already has a parameter \"", k, "\"");
  for (const auto& [k, t] : m.named_buffers(false))
    LOOM_CHECK(k != mask_name(name), method, ": ", m.name(), " already has a buffer \"", k, "\"");
  const bool trainable = slot.requires_grad();
  m.delete_parameter(name);
  // weight_orig is a new handle on the same values; the old one (the layer's member) becomes the slot.
  m.register_parameter(orig_name(name), slot.detach(), trainable);
  m.register_buffer(mask_name(name), mask);
  m.register_forward_pre_hook(PruneHook{name, slot});
  refresh(m, name, slot);
}

}  // namespace

Amount::Amount(double fraction) : fraction_(fraction) {
  LOOM_CHECK(std::isfinite(fraction) && fraction >= 0 && fraction <= 1,
             "prune: amount=", fraction, " should be a float in [0, 1] (a fraction) or a non-negative int (a count)");
}

Amount::Amount(int count) : Amount(int64_t(count)) {}

Amount::Amount(int64_t count) : is_count_(true), count_(count) {
  LOOM_CHECK(count >= 0, "prune: amount=", count, " should be a non-negative int (a count) or a float in [0, 1]");
}

int64_t Amount::of(int64_t n, const std::string& what) const {
  if (is_count_) {
    LOOM_CHECK(count_ <= n, what, ": amount=", count_, " should be at most the number of entries left to prune, ", n);
    return count_;
  }
  // Python's round(): to nearest, ties to even (std::nearbyint in the default rounding mode).
  return int64_t(std::nearbyint(fraction_ * double(n)));
}

void identity(nn::Module& module, const std::string& name) {
  apply(module, name, "identity", [](const Tensor&, const Tensor& mask) { return mask; });
}

void l1_unstructured(nn::Module& module, const std::string& name, Amount amount) {
  apply(module, name, "l1_unstructured",
        [&](const Tensor& t, const Tensor& mask) { return l1_unstructured_mask(t, mask, amount); });
}

void random_unstructured(nn::Module& module, const std::string& name, Amount amount, Generator* gen) {
  apply(module, name, "random_unstructured",
        [&](const Tensor& t, const Tensor& mask) { return random_unstructured_mask(t, mask, amount, gen); });
}

void ln_structured(nn::Module& module, const std::string& name, Amount amount, double n, int64_t dim) {
  apply(module, name, "ln_structured",
        [&](const Tensor& t, const Tensor& mask) { return ln_structured_mask(t, mask, amount, n, dim); });
}

void custom_from_mask(nn::Module& module, const std::string& name, const Tensor& given) {
  apply(module, name, "custom_from_mask", [&](const Tensor&, const Tensor& mask) {
    LOOM_CHECK(given.defined() && given.shape() == mask.shape(), "custom_from_mask: the mask must have the shape ",
               mask.shape(), " of ", module.name(), "'s \"", name, "\", got ",
               given.defined() ? given.shape() : Shape{});
    return mul(mask, given.to(mask.dtype()).to(mask.device()));
  });
}

void global_unstructured(const std::vector<Target>& targets, Amount amount) {
  LOOM_CHECK(!targets.empty(), "global_unstructured: no tensors to prune");
  // torch's parameters_to_vector of the effective tensors and of their masks (ones where not pruned yet).
  std::vector<double> scores, masks;
  std::vector<Shape> shapes;
  {
    NoGradGuard no_grad;
    for (const auto& t : targets) {
      LOOM_CHECK(t.module != nullptr, "global_unstructured: a target has no module");
      auto [id, hook] = find_hook(*t.module, t.name);
      const Tensor w = hook ? hook->slot : own_parameter(*t.module, t.name, "global_unstructured");
      const Tensor mask = hook ? t.module->get_buffer(mask_name(t.name)) : ones_like(w);
      const Tensor eff = hook ? mul(t.module->get_parameter(orig_name(t.name)), mask) : w;
      const auto s = eff.tolist(), m = mask.tolist();
      scores.insert(scores.end(), s.begin(), s.end());
      masks.insert(masks.end(), m.begin(), m.end());
      shapes.push_back(w.shape());
    }
  }
  const int64_t total = int64_t(scores.size());
  const Tensor mask = l1_unstructured_mask(tensor(scores, {total}, {.dtype = DType::f64}),
                                           tensor(masks, {total}, {.dtype = DType::f64}), amount);
  int64_t at = 0;
  for (size_t i = 0; i < targets.size(); ++i) {
    const int64_t n = numel(shapes[i]);
    custom_from_mask(*targets[i].module, targets[i].name, mask.narrow(0, at, n).reshape(shapes[i]));
    at += n;
  }
}

void remove(nn::Module& m, const std::string& name) {
  auto [id, hook] = find_hook(m, name);
  LOOM_CHECK(hook != nullptr, "prune::remove: ", m.name(), "'s \"", name, "\" is not pruned (no ", orig_name(name),
             " / ", mask_name(name), ")");
  const Tensor slot = hook->slot;
  const Tensor orig = m.get_parameter(orig_name(name));
  Tensor value;
  {
    NoGradGuard no_grad;
    value = mul(orig, m.get_buffer(mask_name(name)));
  }
  m.remove_forward_pre_hook(id);  // hook (and its copy of the slot) is gone from here on
  m.delete_parameter(orig_name(name));
  m.delete_buffer(mask_name(name));
  rebind(slot, value);
  m.register_parameter(name, slot, orig.requires_grad());
}

nn::StateDict fold_masks(const nn::StateDict& dict) {
  NoGradGuard no_grad;
  nn::StateDict out;
  for (const auto& [k, t] : dict) {
    if (k.ends_with("_mask") && dict.find(k.substr(0, k.size() - 5) + "_orig")) continue;
    if (k.ends_with("_orig")) {
      const std::string base = k.substr(0, k.size() - 5);
      if (const Tensor* mask = dict.find(base + "_mask")) {
        LOOM_CHECK(mask->shape() == t.shape(), "fold_masks: \"", base, "_mask\" has shape ", mask->shape(),
                   " but \"", k, "\" has ", t.shape());
        out.insert(base, mul(t, mask->to(t.dtype())));
        continue;
      }
    }
    out.insert(k, t);
  }
  return out;
}

bool is_pruned(nn::Module& module, const std::string& name) { return find_hook(module, name).second != nullptr; }

bool is_pruned(nn::Module& module) {
  for (nn::Module* m : module.modules())
    for (int64_t id : m->forward_pre_hook_ids())
      if (auto* f = m->forward_pre_hook(id); f && f->target<PruneHook>()) return true;
  return false;
}

}  // namespace loom::compress::prune
