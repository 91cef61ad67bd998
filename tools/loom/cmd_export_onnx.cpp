// loom export --format onnx: an image classifier run or a GPT as ONNX opset 17 (the work is
// loom/export/onnx_export.h).
#include <filesystem>
#include <iostream>

#include "args.h"
#include "commands.h"
#include "loom/export/onnx_export.h"

namespace loom::cli {

int cmd_export_onnx(const Argv& argv) {
  std::string checkpoint, format, out;
  Args a("loom export --format onnx", "Write a run folder as ONNX opset 17 (image models and GPTs).");
  a.option("--checkpoint", &checkpoint, "DIR", "the run folder: image classifier, GPT run or Hugging Face GPT-2 folder (required)");
  a.choice("--format", &format, {"onnx"}, "the file format");
  a.option("--out", &out, "FILE", "the file to write (required; written atomically)");
  a.parse(argv);
  if (checkpoint.empty() || out.empty()) throw UsageError("--checkpoint DIR and --out FILE are both required");
  if (!std::filesystem::exists(checkpoint)) throw UsageError("--checkpoint " + checkpoint + ": no such folder or file");
  if (std::filesystem::is_directory(out)) throw UsageError("--out " + out + " is a folder; give the file to write");
  if (const auto parent = std::filesystem::path(out).parent_path(); !parent.empty())
    std::filesystem::create_directories(parent);  // as run folders are: the file's folder is made if missing
  const onnx::OnnxExportSummary s = onnx::export_onnx_run(checkpoint, out);
  std::string ops;
  for (const auto& op : s.ops) ops += (ops.empty() ? "" : " ") + op;
  std::cout << "exported " << s.model << " from " << checkpoint << " to " << out << " (ONNX opset 17, " << s.nodes
            << " nodes, " << s.initializers << " initializers, " << s.file_bytes << " bytes)\nops: " << ops << "\n";
  return 0;
}

}  // namespace loom::cli
