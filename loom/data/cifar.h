// CIFAR-10 / CIFAR-100 binary batches: each record is the label byte(s) then 3072 bytes of a 32x32 RGB
// image stored channel by channel.
//   auto train = data::load_cifar10("/data/cifar-10-batches-bin", /*train=*/true);   // 50000 samples
//   auto test = data::load_cifar100("/data/cifar-100-binary", false);                // fine labels 0..99
//   Example e = train->get(0);    // e.data: f32 (3, 32, 32) in [0, 1]; e.target: i64
#pragma once
#include <memory>
#include <string>
#include <vector>

#include "loom/data/dataset.h"

namespace loom::data {

struct CifarFormat {
  int label_bytes = 1;   // 1 for CIFAR-10; 2 for CIFAR-100 (coarse, then fine)
  int label_index = 0;   // which of the label bytes is the target
  int num_classes = 10;  // labels must lie in 0..num_classes-1
};

// Reads and concatenates binary batch files. Each file's size must be a whole number of records and every
// label in range; otherwise the error names the file (and the record).
std::shared_ptr<ByteImageDataset> read_cifar(const std::vector<std::string>& files, CifarFormat f = {});

// data_batch_1.bin .. data_batch_5.bin, or test_batch.bin.
std::shared_ptr<ByteImageDataset> load_cifar10(const std::string& dir, bool train);
// train.bin or test.bin, with the 100 fine labels or, if coarse, the 20 superclasses.
std::shared_ptr<ByteImageDataset> load_cifar100(const std::string& dir, bool train, bool coarse = false);

std::vector<std::string> cifar10_classes();

}  // namespace loom::data
