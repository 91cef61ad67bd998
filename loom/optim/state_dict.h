// The serialisable state of an optimizer or LR scheduler: named tensors plus named scalars.
//   optim::StateDict sd = opt.state_dict();       // after some steps
//   save: sd.tensors -> safetensors, sd.scalars -> the JSON header;  later: opt.load_state_dict(sd);
//
// Keys follow PyTorch's optimizer.state_dict(), flattened with dots. Parameters are numbered 0, 1, ... in
// the order of the param groups and of the params within each group (PyTorch's integer ids):
//   tensors  "state.<i>.<buffer>"          buffer: momentum_buffer, exp_avg, exp_avg_sq, max_exp_avg_sq,
//                                           square_avg, grad_avg, sum  (only those the optimizer created)
//   scalars  "state.<i>.step"              steps taken for parameter i (absent before its first step)
//            "param_groups.<g>.<option>"   each hyper-parameter by its PyTorch name; bools are 0/1 and
//                                           pairs are split ("betas.0", "betas.1")
//            "param_groups.<g>.num_params" how many params group g holds (checked on load)
// Schedulers use scalars only ("last_epoch", "step_count", "base_lrs.<g>", "last_lr.<g>", ...).
// Every scalar is finite, so the map writes to JSON as it is; a key that is absent means its initial value.
#pragma once
#include <map>
#include <string>
#include <utility>
#include <vector>

#include "loom/core/tensor.h"

namespace loom::optim {

struct StateDict {
  std::vector<std::pair<std::string, Tensor>> tensors;
  std::map<std::string, double> scalars;

  // The tensor stored under `key`, or an undefined tensor.
  Tensor tensor(const std::string& key) const {
    for (const auto& [k, t] : tensors)
      if (k == key) return t;
    return {};
  }
  bool has(const std::string& key) const { return scalars.count(key) != 0; }
  // The scalar under `key`; throws naming the key when it is missing.
  double scalar(const std::string& key) const {
    auto it = scalars.find(key);
    LOOM_CHECK(it != scalars.end(), "load_state_dict: the state dict has no entry '", key, "'");
    return it->second;
  }
};

}  // namespace loom::optim
