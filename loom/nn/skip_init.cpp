#include "loom/nn/skip_init.h"

namespace loom::nn {

namespace {
// Per thread, like NoGradGuard: a model built on another thread (a server loading a second model) keeps its init.
thread_local bool g_skip = false;
}  // namespace

SkipInitGuard::SkipInitGuard() : prev_(g_skip) { g_skip = true; }
SkipInitGuard::~SkipInitGuard() { g_skip = prev_; }
bool SkipInitGuard::active() { return g_skip; }

}  // namespace loom::nn
