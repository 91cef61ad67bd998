// libsodium must be initialised once before use; every loom::trust entry point calls this first.
//   loom::trust::ensure_sodium();
#pragma once
#include <string>

namespace loom::trust {
void ensure_sodium();
// The whole file as bytes; throws loom::Error naming the file when it cannot be read.
std::string read_all(const std::string& path);
}  // namespace loom::trust
