// loom export: writes a model for another runtime. A thin dispatcher on --format; each format's options and
// work live in its own file (cmd_export_gguf.cpp -> loom/export/gguf_export.h, cmd_export_onnx.cpp ->
// loom/export/onnx_export.h).
#include <string>

#include "args.h"
#include "commands.h"

namespace loom::cli {

namespace {

// The value of --format (either "--format X" or "--format=X"), or "" when absent.
std::string format_of(const Argv& argv) {
  for (size_t i = 0; i < argv.size(); ++i) {
    if (argv[i] == "--format" && i + 1 < argv.size()) return argv[i + 1];
    if (argv[i].starts_with("--format=")) return argv[i].substr(9);
  }
  return "";
}

const char* const kExportHelp =
    "usage: loom export --format FORMAT [options]\n\n"
    "Write a model for another runtime. Formats:\n"
    "  gguf   a GPT (run folder, quantized run, Hugging Face GPT-2 folder) as llama.cpp's gpt2 GGUF v3\n"
    "         (--checkpoint DIR --type f32|f16|q8_0|q4_0 --out model.gguf)\n"
    "  onnx   an image classifier run or a GPT (run folder, Hugging Face GPT-2 folder) as ONNX opset 17\n"
    "         (--checkpoint DIR --out model.onnx)\n\n"
    "Run 'loom export --format FORMAT --help' for the options of a format.\n";

}  // namespace

int cmd_export(const Argv& argv) {
  const std::string format = format_of(argv);
  if (format == "gguf") return cmd_export_gguf(argv);
  if (format == "onnx") return cmd_export_onnx(argv);
  for (const auto& s : argv)
    if (s == "--help" || s == "-h") throw HelpRequested{kExportHelp};
  if (format.empty()) throw UsageError("--format is required (gguf or onnx)");
  throw UsageError("--format " + format + " is not supported (gguf or onnx)");
}

}  // namespace loom::cli
