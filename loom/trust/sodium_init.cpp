// sodium_init is thread-safe and idempotent; a failure (no entropy source) makes every key and nonce unsafe,
// so it is an error rather than a warning.
#include "loom/trust/sodium_init.h"

#include <sodium.h>

#include "loom/core/error.h"

namespace loom::trust {
void ensure_sodium() {
  static const int rc = sodium_init();
  LOOM_CHECK(rc >= 0, "libsodium failed to initialise (no secure random source?)");
}
}  // namespace loom::trust
