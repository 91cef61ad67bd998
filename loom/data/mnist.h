// MNIST and Fashion-MNIST in IDX format (raw or gzip), and the IDX reader under them.
//   auto train = data::load_fashion_mnist();                 // /usr/share/datasets/fashion-mnist, 60000 samples
//   auto test = data::load_mnist("/data/mnist", /*train=*/false);
//   Example e = train->get(0);    // e.data: f32 (1, 28, 28) in [0, 1]; e.target: i64 class 0..9
#pragma once
#include <memory>
#include <string>
#include <vector>

#include "loom/core/tensor.h"
#include "loom/data/dataset.h"

namespace loom::data {

inline constexpr const char* kFashionMnistDir = "/usr/share/datasets/fashion-mnist";

// Reads an IDX file (magic 0 0 type ndim, big-endian u32 dims, big-endian data) into a tensor of that
// shape: u8 for type 0x08, i32 for 0x0C, f32 for 0x0D, f64 for 0x0E. Gzipped files are inflated first.
// The size must match the header exactly; any mismatch throws naming the file.
Tensor read_idx(const std::string& path);

// images (N, 1, 28, 28) u8 + labels (N) from `dir`, checked against each other: same count, 28x28,
// labels in 0..9. File names tried: {train,t10k}-{images-idx3,labels-idx1}-ubyte with or without .gz,
// and the "images.idx3-ubyte" spelling some mirrors use.
std::shared_ptr<ByteImageDataset> load_mnist(const std::string& dir, bool train);
std::shared_ptr<ByteImageDataset> load_fashion_mnist(const std::string& dir = kFashionMnistDir, bool train = true);

// Class names by label, as torchvision lists them ("T-shirt/top", ... / "0 - zero", ...).
std::vector<std::string> fashion_mnist_classes();
std::vector<std::string> mnist_classes();

}  // namespace loom::data
