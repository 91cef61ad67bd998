// Building a model whose weights are about to be loaded: while a SkipInitGuard lives (on this thread), nn::init's
// random fills (uniform_, normal_ and the xavier/kaiming forms built on them) leave the tensor as it is, and
// models skip their own reset_parameters. A GPT-2 124M then builds in milliseconds instead of drawing 124M normal
// numbers it would overwrite at once (most of a load's time, measured in docs/performance.md). The parameters hold
// uninitialised memory until the load fills them, so use it only with a load that checks every parameter is set
// (a strict load_state_dict, or a loader that checks the file covers the model).
//   { nn::SkipInitGuard skip; model = std::make_shared<models::GPT>(cfg); }  load_weights(*model);
#pragma once

namespace loom::nn {

class SkipInitGuard {
 public:
  SkipInitGuard();
  ~SkipInitGuard();
  SkipInitGuard(const SkipInitGuard&) = delete;
  SkipInitGuard& operator=(const SkipInitGuard&) = delete;
  static bool active();  // on this thread

 private:
  bool prev_;
};

}  // namespace loom::nn
