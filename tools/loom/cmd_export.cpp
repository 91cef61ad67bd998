// loom export: a run folder to another runtime's file format. This file only parses the options and picks the
// format's exporter; the formats themselves live in loom/export/ (ONNX: onnx_export.h).
#include <filesystem>
#include <iostream>

#include "args.h"
#include "commands.h"
#include "loom/export/onnx_export.h"

namespace loom::cli {

namespace {

int export_onnx(const std::string& checkpoint, const std::string& out) {
  const onnx::OnnxExportSummary s = onnx::export_onnx_run(checkpoint, out);
  std::string ops;
  for (const auto& op : s.ops) ops += (ops.empty() ? "" : " ") + op;
  std::cout << "exported " << s.model << " from " << checkpoint << " to " << out << " (ONNX opset 17, " << s.nodes
            << " nodes, " << s.initializers << " initializers, " << s.file_bytes << " bytes)\nops: " << ops << "\n";
  return 0;
}

}  // namespace

int cmd_export(const Argv& argv) {
  std::string checkpoint, format, out;
  Args a("loom export", "Write a run folder in another runtime's format (ONNX opset 17 for image models and GPTs).");
  a.option("--checkpoint", &checkpoint, "DIR", "the run folder: image classifier, GPT run or Hugging Face GPT-2 folder (required)");
  a.choice("--format", &format, {"onnx"}, "the file format (required)");
  a.option("--out", &out, "FILE", "the file to write (required; written atomically)");
  a.parse(argv);
  if (checkpoint.empty() || format.empty() || out.empty())
    throw UsageError("--checkpoint DIR, --format onnx and --out FILE are all required");
  if (!std::filesystem::exists(checkpoint)) throw UsageError("--checkpoint " + checkpoint + ": no such folder or file");
  if (std::filesystem::is_directory(out)) throw UsageError("--out " + out + " is a folder; give the file to write");
  if (const auto parent = std::filesystem::path(out).parent_path(); !parent.empty())
    std::filesystem::create_directories(parent);  // as run folders are: the file's folder is made if missing
  return export_onnx(checkpoint, out);
}

}  // namespace loom::cli
