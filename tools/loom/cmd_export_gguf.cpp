// loom export --format gguf: a GPT to llama.cpp's GGUF (the work is loom/export/gguf_export.h).
#include <cstdio>
#include <filesystem>

#include "args.h"
#include "commands.h"
#include "loom/export/gguf_export.h"

namespace loom::cli {

namespace fs = std::filesystem;

int cmd_export_gguf(const Argv& argv) {
  std::string checkpoint, format, type = "f32", out, name = "loom-gpt2";
  Args a("loom export --format gguf",
         "Write a GPT (a loom GPT run, a `loom quantize` run, a Hugging Face GPT-2 folder, or a GGUF file) as a\n"
         "GGUF v3 file with llama.cpp's gpt2 tensor names and metadata and its BPE vocabulary, for llama.cpp and\n"
         "the tools built on it. `loom generate --checkpoint model.gguf` loads it back.");
  a.option("--checkpoint", &checkpoint, "DIR", "the GPT run or Hugging Face GPT-2 folder (required)");
  a.choice("--format", &format, {"gguf"}, "the file format");
  a.choice("--type", &type, {"f32", "f16", "q8_0", "q4_0"},
           "the weights' type (default f32): f16 converts every matrix; q8_0/q4_0 the block Linears and the LM head;"
           " norms and biases stay f32");
  a.option("--out", &out, "FILE", "the .gguf file to write (required; written atomically)");
  a.option("--name", &name, "NAME", "general.name in the file (default loom-gpt2)");
  a.parse(argv);
  if (checkpoint.empty() || out.empty()) throw UsageError("--checkpoint DIR and --out FILE are required");
  if (fs::is_directory(out)) throw UsageError("--out " + out + " is a folder; give the .gguf file to write");
  if (fs::exists(out) && fs::exists(checkpoint) && fs::equivalent(out, checkpoint))
    throw UsageError("--out must differ from --checkpoint");
  if (!fs::exists(checkpoint)) throw UsageError("--checkpoint " + checkpoint + ": no such folder or file");
  const auto s = export_::export_gguf(checkpoint, out, {.type = export_::parse_gguf_type(type), .name = name});
  std::printf("exported %s to %s: %s, %lld tensors, %.2f MB\n", checkpoint.c_str(), out.c_str(), type.c_str(),
              (long long)s.tensors, double(s.bytes) / 1e6);
  return 0;
}

}  // namespace loom::cli
