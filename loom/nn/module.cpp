#include "loom/nn/module.h"

#include <algorithm>
#include <cxxabi.h>
#include <set>
#include <sstream>
#include <typeinfo>

#include "loom/autograd/grad_mode.h"
#include "loom/ops/creation.h"

namespace loom::nn {

namespace {

// Replaces what `t` points at in place, as torch's `param.data = new` does, so the layer's member and the
// registered handle (which share one TensorImpl) both see the converted tensor.
void set_data(const Tensor& t, const Tensor& src) {
  TensorImpl* d = t.impl();
  const TensorImpl* s = src.impl();
  d->storage = s->storage;
  d->shape = s->shape;
  d->strides = s->strides;
  d->offset = s->offset;
  d->dtype = s->dtype;
  d->grad_accumulator.reset();  // its recorded dtype is stale; the next graph makes a fresh one
}

std::string join_keys(const std::vector<std::string>& keys) {
  std::string s;
  for (size_t i = 0; i < keys.size(); ++i) s += (i ? ", \"" : "\"") + keys[i] + "\"";
  return s;
}

}  // namespace

Tensor Module::forward(const Tensor&) {
  LOOM_FAIL(name(), ": forward(const Tensor&) is not implemented for this module");
}

Tensor Module::operator()(const Tensor& x) {
  if (!pre_hooks_.empty()) {
    auto pre = pre_hooks_;  // copied: a hook may remove itself
    for (auto& [id, h] : pre) h(*this, x);
  }
  Tensor y = forward(x);
  // Copied first: a hook may remove itself.
  auto hooks = hooks_;
  for (auto& [id, h] : hooks) h(*this, x, y);
  return y;
}

// ---- registration

void Module::check_new_name(const std::string& n, const char* what) const {
  LOOM_CHECK(!n.empty(), name(), ": ", what, " name can't be empty");
  LOOM_CHECK(n.find('.') == std::string::npos, name(), ": ", what, " name can't contain \".\", got \"", n, "\"");
  auto in_params = std::any_of(params_.begin(), params_.end(), [&](const auto& p) { return p.first == n; });
  auto in_bufs = std::any_of(buffers_.begin(), buffers_.end(), [&](const auto& b) { return b.name == n; });
  auto in_mods = std::any_of(children_.begin(), children_.end(), [&](const auto& c) { return c.first == n; });
  const std::string w = what;
  LOOM_CHECK(!(in_params && w != "parameter") && !(in_bufs && w != "buffer") && !(in_mods && w != "module"),
             name(), ": can't register ", what, " \"", n, "\": the name is already used by another attribute");
}

Tensor Module::register_parameter(const std::string& n, const Tensor& t, bool requires_grad) {
  check_new_name(n, "parameter");
  Tensor p;
  if (t.defined()) {
    LOOM_CHECK(!requires_grad || is_floating(t.dtype()), name(), ": parameter \"", n,
               "\" must be floating point to require grad, got ", t.dtype());
    p = t.is_leaf() ? t : t.detach();
    p.requires_grad_(requires_grad);
  }
  for (auto& [k, v] : params_)
    if (k == n) return v = p;
  params_.emplace_back(n, p);
  return p;
}

Tensor Module::register_buffer(const std::string& n, const Tensor& t, bool persistent) {
  check_new_name(n, "buffer");
  Tensor b = t.defined() ? t.detach() : t;
  for (auto& e : buffers_)
    if (e.name == n) {
      e.persistent = persistent;
      return e.value = b;
    }
  buffers_.push_back({n, b, persistent});
  return b;
}

Tensor Module::delete_parameter(const std::string& n) {
  auto it = std::find_if(params_.begin(), params_.end(), [&](const auto& p) { return p.first == n; });
  LOOM_CHECK(it != params_.end(), name(), ": has no parameter \"", n, "\" to delete");
  Tensor t = it->second;
  params_.erase(it);
  return t;
}

Tensor Module::delete_buffer(const std::string& n) {
  auto it = std::find_if(buffers_.begin(), buffers_.end(), [&](const auto& b) { return b.name == n; });
  LOOM_CHECK(it != buffers_.end(), name(), ": has no buffer \"", n, "\" to delete");
  Tensor t = it->value;
  buffers_.erase(it);
  return t;
}

void Module::add_child(const std::string& n, ModulePtr m) {
  check_new_name(n, "module");
  LOOM_CHECK(m != nullptr, name(), ": can't register a null module as \"", n, "\"");
  LOOM_CHECK(m.get() != this, name(), ": a module can't be its own child");
  for (auto& [k, v] : children_)
    if (k == n) {
      v = std::move(m);
      return;
    }
  children_.emplace_back(n, std::move(m));
}

// ---- queries

std::vector<std::pair<std::string, Module*>> Module::named_modules(const std::string& prefix) {
  std::vector<std::pair<std::string, Module*>> out;
  std::set<const Module*> seen;
  std::function<void(Module&, const std::string&)> walk = [&](Module& m, const std::string& p) {
    if (!seen.insert(&m).second) return;
    out.emplace_back(p, &m);
    for (auto& [k, c] : m.children_) walk(*c, p.empty() ? k : p + "." + k);
  };
  walk(*this, prefix);
  return out;
}

std::vector<Module*> Module::modules() {
  std::vector<Module*> out;
  for (auto& [k, m] : named_modules()) out.push_back(m);
  return out;
}

std::vector<ModulePtr> Module::children() const {
  std::vector<ModulePtr> out;
  for (const auto& [k, m] : children_) out.push_back(m);
  return out;
}

NamedTensors Module::named_parameters(bool recurse) const {
  NamedTensors out;
  std::set<const TensorImpl*> seen;
  auto self = const_cast<Module*>(this);  // named_modules only reads; it hands out mutable pointers
  auto mods = recurse ? self->named_modules() : std::vector<std::pair<std::string, Module*>>{{"", self}};
  for (auto& [prefix, m] : mods)
    for (const auto& [k, p] : m->params_)
      if (p.defined() && seen.insert(p.impl()).second) out.emplace_back(prefix.empty() ? k : prefix + "." + k, p);
  return out;
}

NamedTensors Module::named_buffers(bool recurse) const {
  NamedTensors out;
  std::set<const TensorImpl*> seen;
  auto self = const_cast<Module*>(this);
  auto mods = recurse ? self->named_modules() : std::vector<std::pair<std::string, Module*>>{{"", self}};
  for (auto& [prefix, m] : mods)
    for (const auto& b : m->buffers_)
      if (b.value.defined() && seen.insert(b.value.impl()).second)
        out.emplace_back(prefix.empty() ? b.name : prefix + "." + b.name, b.value);
  return out;
}

std::vector<Tensor> Module::parameters(bool recurse) const {
  std::vector<Tensor> out;
  for (auto& [k, p] : named_parameters(recurse)) out.push_back(p);
  return out;
}

std::vector<Tensor> Module::buffers(bool recurse) const {
  std::vector<Tensor> out;
  for (auto& [k, b] : named_buffers(recurse)) out.push_back(b);
  return out;
}

ModulePtr Module::get_submodule(const std::string& path) const {
  LOOM_CHECK(!path.empty(), name(), ": get_submodule needs a non-empty path");
  const Module* m = this;
  ModulePtr found;
  std::stringstream ss(path);
  std::string part;
  while (std::getline(ss, part, '.')) {
    auto it = std::find_if(m->children_.begin(), m->children_.end(), [&](const auto& c) { return c.first == part; });
    LOOM_CHECK(it != m->children_.end(), name(), " has no submodule \"", path, "\" (", m->name(), " has no child \"",
               part, "\")");
    found = it->second;
    m = found.get();
  }
  return found;
}

Tensor Module::get_parameter(const std::string& path) const {
  const size_t dot = path.rfind('.');
  const Module* m = this;
  ModulePtr holder;
  if (dot != std::string::npos) holder = get_submodule(path.substr(0, dot)), m = holder.get();
  const std::string leaf = dot == std::string::npos ? path : path.substr(dot + 1);
  for (const auto& [k, p] : m->params_)
    if (k == leaf && p.defined()) return p;
  LOOM_FAIL(name(), " has no parameter \"", path, "\"");
}

Tensor Module::get_buffer(const std::string& path) const {
  const size_t dot = path.rfind('.');
  const Module* m = this;
  ModulePtr holder;
  if (dot != std::string::npos) holder = get_submodule(path.substr(0, dot)), m = holder.get();
  const std::string leaf = dot == std::string::npos ? path : path.substr(dot + 1);
  for (const auto& b : m->buffers_)
    if (b.name == leaf && b.value.defined()) return b.value;
  LOOM_FAIL(name(), " has no buffer \"", path, "\"");
}

// ---- state

// PyTorch's _save_to_state_dict order: own parameters, own persistent buffers, then each child.
void Module::collect_state(const std::string& prefix,
                          std::vector<std::tuple<std::string, Tensor, const Module*>>& out) const {
  for (const auto& [k, p] : params_)
    if (p.defined()) out.emplace_back(prefix + k, p, this);
  for (const auto& b : buffers_)
    if (b.value.defined() && b.persistent) out.emplace_back(prefix + b.name, b.value, this);
  for (const auto& [k, c] : children_) c->collect_state(prefix + k + ".", out);
}

StateDict Module::state_dict() const {
  std::vector<std::tuple<std::string, Tensor, const Module*>> entries;
  collect_state("", entries);
  StateDict sd;
  for (auto& [k, t, m] : entries) sd.insert(k, t.detach());
  return sd;
}

LoadResult Module::load_state_dict(const StateDict& dict, bool strict) {
  std::vector<std::tuple<std::string, Tensor, const Module*>> entries;
  collect_state("", entries);
  LoadResult res;
  std::vector<std::string> mismatches;
  std::set<std::string> expected;
  for (auto& [k, t, m] : entries) {
    expected.insert(k);
    const Tensor* src = dict.find(k);
    if (!src) {
      res.missing_keys.push_back(k);
      continue;
    }
    if (!src->defined() || src->shape() != t.shape()) {
      std::ostringstream os;
      using loom::operator<<;
      os << "size mismatch for " << k << " (in " << m->name() << "): copying a param with shape "
         << (src->defined() ? src->shape() : Shape{}) << " from checkpoint, the shape in current model is "
         << t.shape() << ".";
      mismatches.push_back(os.str());
    }
  }
  for (const auto& [k, t] : dict)
    if (!expected.count(k)) res.unexpected_keys.push_back(k);

  std::string msg;
  if (strict && !res.missing_keys.empty())
    msg += "\n\tMissing key(s) in state_dict: " + join_keys(res.missing_keys) + ".";
  if (strict && !res.unexpected_keys.empty())
    msg += "\n\tUnexpected key(s) in state_dict: " + join_keys(res.unexpected_keys) + ".";
  for (const auto& m : mismatches) msg += "\n\t" + m;
  LOOM_CHECK(msg.empty(), "Error(s) in loading state_dict for ", name(), ":", msg);

  NoGradGuard g;
  for (auto& [k, t, m] : entries)
    if (const Tensor* src = dict.find(k)) Tensor(t).copy_(*src);
  return res;
}

// ---- modes and bulk operations

void Module::train(bool on) {
  training_ = on;
  for (auto& [k, c] : children_) c->train(on);
}

void Module::zero_grad(bool set_to_none) {
  for (auto& p : parameters()) {
    Tensor g = p.grad();
    if (!g.defined()) continue;
    if (set_to_none) {
      p.set_grad(Tensor());
    } else {
      NoGradGuard ng;
      g.zero_();
    }
  }
}

int64_t Module::num_parameters(bool trainable_only) const {
  int64_t n = 0;
  for (const auto& p : parameters())
    if (!trainable_only || p.requires_grad()) n += p.numel();
  return n;
}

Module& Module::to(DType dtype) {
  LOOM_CHECK(is_floating(dtype), name(), ".to: expected a floating point dtype, got ", dtype);
  NoGradGuard g;
  for (Module* m : modules()) {
    for (auto& [k, p] : m->params_) {
      if (!p.defined() || !is_floating(p.dtype()) || p.dtype() == dtype) continue;
      set_data(p, p.detach().to(dtype));
      if (p.grad().defined()) p.set_grad(p.grad().to(dtype));
    }
    for (auto& b : m->buffers_)
      if (b.value.defined() && is_floating(b.value.dtype()) && b.value.dtype() != dtype)
        set_data(b.value, b.value.detach().to(dtype));
  }
  return *this;
}

Module& Module::to(Device device) {
  NoGradGuard g;
  for (Module* m : modules()) {
    for (auto& [k, p] : m->params_) {
      if (!p.defined() || p.device() == device) continue;
      set_data(p, p.detach().to(device));
      if (p.grad().defined()) p.set_grad(p.grad().to(device));
    }
    for (auto& b : m->buffers_)
      if (b.value.defined() && b.value.device() != device) set_data(b.value, b.value.detach().to(device));
  }
  return *this;
}

Module& Module::requires_grad_(bool on) {
  for (auto& p : parameters()) p.requires_grad_(on);
  return *this;
}

void Module::apply(const std::function<void(Module&)>& fn) {
  // Children first, then this module, as PyTorch's Module.apply does.
  for (auto& [k, c] : children_) c->apply(fn);
  fn(*this);
}

// ---- hooks

int64_t Module::register_forward_hook(ForwardHook hook) {
  hooks_.emplace_back(next_hook_id_, std::move(hook));
  return next_hook_id_++;
}

int64_t Module::register_forward_pre_hook(ForwardPreHook hook) {
  pre_hooks_.emplace_back(next_hook_id_, std::move(hook));
  return next_hook_id_++;
}

void Module::remove_forward_pre_hook(int64_t id) {
  std::erase_if(pre_hooks_, [&](const auto& h) { return h.first == id; });
}

std::vector<int64_t> Module::forward_pre_hook_ids() const {
  std::vector<int64_t> ids;
  for (const auto& h : pre_hooks_) ids.push_back(h.first);
  return ids;
}

ForwardPreHook* Module::forward_pre_hook(int64_t id) {
  for (auto& [k, fn] : pre_hooks_)
    if (k == id) return &fn;
  return nullptr;
}

void Module::remove_forward_hook(int64_t id) {
  std::erase_if(hooks_, [&](const auto& h) { return h.first == id; });
}

// ---- printing

std::string Module::name() const {
  const char* mangled = typeid(*this).name();
  int status = 0;
  char* d = abi::__cxa_demangle(mangled, nullptr, nullptr, &status);
  std::string s = status == 0 && d ? d : mangled;
  std::free(d);
  // Drop namespaces ("loom::nn::Linear" -> "Linear") but keep template arguments intact.
  const size_t angle = s.find('<');
  const size_t colon = s.rfind("::", angle == std::string::npos ? std::string::npos : angle);
  return colon == std::string::npos ? s : s.substr(colon + 2);
}

std::string Module::repr() const {
  std::vector<std::string> lines;
  const std::string extra = extra_repr();
  size_t n_extra = 0;
  if (!extra.empty()) {
    std::stringstream ss(extra);
    for (std::string l; std::getline(ss, l);) lines.push_back(l), ++n_extra;
  }
  for (const auto& [k, c] : children_) {
    // Indent every line of the child's repr but its first, as PyTorch's _addindent does.
    std::string child = c->repr(), indented;
    for (char ch : child) indented += ch == '\n' ? std::string("\n  ") : std::string(1, ch);
    lines.push_back("(" + k + "): " + indented);
  }
  std::string s = name() + "(";
  if (n_extra == 1 && children_.empty()) {
    s += lines[0];
  } else if (!lines.empty()) {
    s += "\n";
    for (const auto& l : lines) s += "  " + l + "\n";
  }
  return s + ")";
}

std::ostream& operator<<(std::ostream& os, const Module& m) { return os << m.repr(); }

}  // namespace loom::nn
