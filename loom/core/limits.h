// Bounds on sizes that come from outside (files, flags), checked before anything is allocated, so a bad
// config.json or flag gets a message naming the field instead of an out-of-memory kill or a minutes-long stall.
//   check_size("config.json: n_layer", n_layer, 1, limits::kMaxLayers);
//   check_fits_in_memory(12.0 * n_params * 4, "training gpt (n_layer=48, n_embd=8192)");
//   int64_t px = max_image_pixels();   // LOOM_MAX_IMAGE_PIXELS, default 89,478,485 (PIL's)
#pragma once
#include <cstdint>
#include <string>

namespace loom {

namespace limits {
// Generous for anything that trains on a CPU, and far below what would overflow int64 products.
constexpr int64_t kMaxLayers = 1024;          // LSTM / transformer layers
constexpr int64_t kMaxWidth = 1 << 17;        // embedding, hidden, MLP and head widths (131072)
constexpr int64_t kMaxVocab = 1 << 24;        // tokens in a vocabulary (16.7M)
constexpr int64_t kMaxContext = 1 << 20;      // positions of a transformer / tokens per block
constexpr int64_t kMaxFeatures = 1 << 24;     // input features of a regression / linear model
constexpr int64_t kMaxClasses = 1 << 20;      // output classes
constexpr int64_t kMaxImageSide = 1 << 16;    // image height or width, in pixels (decoded or model input)
constexpr int64_t kDefaultMaxImagePixels = 89478485;  // PIL's Image.MAX_IMAGE_PIXELS (a decompression-bomb guard)
}  // namespace limits

// Throws loom::Error "WHAT must be in [lo, hi], got V" when v is outside; `what` names the file and field.
void check_size(const std::string& what, int64_t v, int64_t lo, int64_t hi);

// Bytes this process can still allocate: the least of MemAvailable (/proc/meminfo), the cgroup's memory limit
// less its usage, and RLIMIT_AS / RLIMIT_DATA less what is mapped; -1 when none can be read.
int64_t available_memory_bytes();

// Throws naming `what` when `bytes` (an estimate) exceeds available_memory_bytes(). LOOM_SKIP_MEMORY_CHECK=1
// turns the check off for those who know better (e.g. swap-backed runs).
void check_fits_in_memory(double bytes, const std::string& what);

// Largest image, in pixels, a decoder accepts: LOOM_MAX_IMAGE_PIXELS if set (a positive integer), else the default.
int64_t max_image_pixels();

// "1.5 GiB", "300 MiB": for messages.
std::string format_bytes(double bytes);

}  // namespace loom
