// loom's metadata in model.safetensors / checkpoints (loom.model, loom.input, loom.classes, loom.normalize,
// ...): cli::load_model, what `loom eval` and `loom predict` call. The input is a whole safetensors file;
// the seeds are small models loom saved, so mutations land in the metadata and weights.
#include "fuzz_common.h"
#include "model_file.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  static fuzz::ScratchFile file(".safetensors");
  return fuzz::guarded([&] { loom::cli::load_model(file.write(data, size), ""); });
}
