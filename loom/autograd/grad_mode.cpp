#include "loom/autograd/grad_mode.h"

namespace loom {

// Thread-local, as in PyTorch: a no-grad scope on one thread does not affect data-loader workers.
static thread_local bool t_grad_enabled = true;
bool grad_enabled() { return t_grad_enabled; }
void set_grad_enabled(bool on) { t_grad_enabled = on; }

}  // namespace loom
