// GGUF v3 (llama.cpp's model files): parse_gguf, what `loom generate/eval/export --checkpoint model.gguf` read
// first (runtime::load_gguf_gpt builds the GPT only from what it accepted).
#include "fuzz_common.h"
#include "loom/io/gguf.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  return fuzz::guarded([&] {
    const loom::io::GGUFFile f = loom::io::parse_gguf(std::string(reinterpret_cast<const char*>(data), size), "fuzz.gguf");
    // What parses, written back by the builder, must parse again with the same tensors.
    loom::io::GGUFBuilder b;
    b.alignment = f.alignment;
    for (const auto& [k, v] : f.kv) b.set(k, v);
    for (const auto& t : f.tensors) b.add_tensor(t.name, t.type, t.dims, std::string(f.data(t)));
    const loom::io::GGUFFile g = loom::io::parse_gguf(b.bytes(), "round trip");
    if (g.tensors.size() != f.tensors.size()) std::abort();
    for (size_t i = 0; i < f.tensors.size(); ++i)
      if (g.data(g.tensors[i]) != f.data(f.tensors[i])) std::abort();
  });
}
