// NumPy .npy files (format 1.0, C order, little-endian) for attribution maps and other arrays programs read.
//   io::write_npy("saliency.npy", attributions);     // np.load("saliency.npy") -> float32 array, same shape
//   Tensor t = io::read_npy("saliency.npy");
#pragma once
#include <string>

#include "loom/core/tensor.h"

namespace loom::io {

// f32, f64, i64, i32, u8 and bool tensors; atomic write (temp file + rename).
void write_npy(const std::string& path, const Tensor& t);
// Reads what write_npy writes (and any C-order little-endian .npy of those dtypes); throws naming the file.
Tensor read_npy(const std::string& path);

}  // namespace loom::io
