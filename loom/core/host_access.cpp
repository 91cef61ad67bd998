#include "loom/core/host_access.h"

namespace loom {

namespace {
std::atomic<int> g_open{0};
}  // namespace

HostAccessScope::HostAccessScope() { g_open.fetch_add(1, std::memory_order_relaxed); }
HostAccessScope::~HostAccessScope() { g_open.fetch_sub(1, std::memory_order_relaxed); }
bool host_access_open() { return g_open.load(std::memory_order_relaxed) > 0; }

}  // namespace loom
