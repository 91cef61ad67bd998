// loom quantize: a GPT run (or Hugging Face GPT-2 folder) to a run folder with Q8_0 / Q4_0 weights that
// generate/eval load like any run; and the per-tensor size table `loom summary --checkpoint DIR` prints.
#include <cstdio>
#include <filesystem>
#include <iostream>

#include "args.h"
#include "commands.h"
#include "lm_common.h"
#include "loom/data/file_util.h"
#include "loom/io/safetensors.h"
#include "loom/models/gpt_quant.h"
#include "loom/models/language_model.h"

namespace loom::cli {

namespace fs = std::filesystem;

namespace {

// Files a run folder keeps its tokenizer in (lm_common.cpp's load_run_tokenizer looks for these).
const char* const kTokenizerFiles[] = {"tokenizer.json", "tokenizer", "encoder.json", "vocab.bpe",
                                       "vocab.json",     "merges.txt", "tokenizer_config.json"};

std::string mb(double bytes) {
  char buf[32];
  std::snprintf(buf, sizeof buf, "%.2f MB", bytes / 1e6);
  return buf;
}

}  // namespace

int summary_checkpoint(const std::string& dir) {
  const fs::path file = fs::is_directory(dir) ? fs::path(dir) / "model.safetensors" : fs::path(dir);
  if (!fs::exists(file)) throw UsageError("--checkpoint " + dir + ": no model.safetensors there");
  const io::SafetensorsFile f = io::load_safetensors(file.string());
  std::printf("%-40s %-8s %-18s %14s\n", "tensor", "dtype", "shape", "bytes");
  double total = 0;
  for (const auto& [name, t] : f.tensors) {
    std::string shape = "(";
    for (int64_t d = 0; d < t.dim(); ++d) shape += (d ? ", " : "") + std::to_string(t.size(d));
    shape += ")";
    // A `.weight_q` tensor is raw ggml blocks; its dtype column says which.
    const auto q = f.metadata.find("loom_quantization");
    const std::string dtype = name.ends_with(".weight_q") && q != f.metadata.end() ? q->second : std::string(dtype_name(t.dtype()));
    const double bytes = double(t.numel()) * double(itemsize(t.dtype()));
    total += bytes;
    std::printf("%-40s %-8s %-18s %14.0f\n", name.c_str(), dtype.c_str(), shape.c_str(), bytes);
  }
  std::printf("total: %zu tensors, %s of tensor data, file %s\n", f.tensors.size(), mb(total).c_str(),
              mb(double(fs::file_size(file))).c_str());
  return 0;
}

int cmd_quantize(const Argv& argv) {
  std::string checkpoint, format, out;
  Args a("loom quantize", "Quantize a GPT run folder to ggml's Q8_0 or Q4_0 blocks (a run folder generate/eval load).");
  a.option("--checkpoint", &checkpoint, "DIR", "the GPT run or Hugging Face GPT-2 folder (required)");
  a.choice("--format", &format, {"q8_0", "q4_0"}, "the block format (required)");
  a.option("--out", &out, "DIR", "the folder to write (required; must differ from --checkpoint)");
  a.parse(argv);
  if (checkpoint.empty() || format.empty() || out.empty())
    throw UsageError("--checkpoint DIR, --format q8_0|q4_0 and --out DIR are all required");
  if (!is_lm_folder(checkpoint))
    throw UsageError("--checkpoint " + checkpoint + ": not a language-model run folder (no config.json with arch)");
  if (fs::exists(out) && fs::equivalent(out, checkpoint)) throw UsageError("--out must differ from --checkpoint");
  auto lm = models::load_language_model(checkpoint);
  auto gpt = std::dynamic_pointer_cast<models::GPT>(lm);
  if (!gpt) throw UsageError("--checkpoint " + checkpoint + ": only GPT models are quantized, this is " + lm->name());
  const quant::QuantFormat f = quant::parse_format(format);
  models::quantize_gpt(*gpt, f);
  const auto source_config = nlohmann::json::parse(data::read_file((fs::path(checkpoint) / "config.json").string()));
  models::save_quantized_gpt(*gpt, f, out, {}, source_config);
  for (const char* name : kTokenizerFiles) {
    const fs::path src = fs::path(checkpoint) / name;
    if (fs::exists(src))
      fs::copy(src, fs::path(out) / name, fs::copy_options::recursive | fs::copy_options::overwrite_existing);
  }
  const auto size = [](const std::string& d) {
    const fs::path p = fs::path(d) / "model.safetensors";
    return fs::exists(p) ? double(fs::file_size(p)) : 0.0;
  };
  std::cout << "quantized " << checkpoint << " to " << format << ": " << out << " (model.safetensors "
            << mb(size(checkpoint)) << " -> " << mb(size(out)) << ")\n";
  return 0;
}

}  // namespace loom::cli
