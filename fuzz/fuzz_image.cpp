// PNG / JPEG (and whatever else stb_image accepts) through decode_image, the entry read_image, ImageFolder and
// `loom predict photo.png` use. The first byte picks the channel count asked for (0 = as stored).
#include "fuzz_common.h"
#include "loom/data/image_folder.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  if (size < 1) return 0;
  const int channels = data[0] % 5;
  return fuzz::guarded([&] {
    loom::data::decode_image(std::string(reinterpret_cast<const char*>(data) + 1, size - 1), "fuzz.png", channels);
  });
}
