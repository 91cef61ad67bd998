// safetensors header + tensor table: load_safetensors, what every checkpoint and model load goes through.
#include "fuzz_common.h"
#include "loom/io/safetensors.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  static fuzz::ScratchFile file(".safetensors");
  return fuzz::guarded([&] {
    loom::io::SafetensorsFile f = loom::io::load_safetensors(file.write(data, size));
    // What loads, saves back to the same bytes' meaning: a round trip through memory must parse again.
    loom::io::parse_safetensors(loom::io::safetensors_bytes(f.tensors, f.metadata), "round trip");
  });
}
