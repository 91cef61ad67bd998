// CIFAR-10 / CIFAR-100 binary batches. The first byte picks the format (CIFAR-10, CIFAR-100 fine or coarse).
#include "fuzz_common.h"
#include "loom/data/cifar.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  static fuzz::ScratchFile file(".bin");
  if (size < 1) return 0;
  static const loom::data::CifarFormat formats[] = {{1, 0, 10}, {2, 1, 100}, {2, 0, 20}};
  const loom::data::CifarFormat f = formats[data[0] % 3];
  return fuzz::guarded([&] {
    auto ds = loom::data::read_cifar({file.write(data + 1, size - 1)}, f);
    if (ds->size() > 0) ds->get(ds->size() - 1);
  });
}
