// IDX files (MNIST / Fashion-MNIST), raw or gzip: read_idx inflates when it sees the gzip magic.
#include "fuzz_common.h"
#include "loom/data/mnist.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  static fuzz::ScratchFile file("-idx3-ubyte");
  return fuzz::guarded([&] { loom::data::read_idx(file.write(data, size)); });
}
