// loom quantize: a GPT run (or Hugging Face GPT-2 folder) to a run folder with Q8_0 / Q4_0 weights that
// generate/eval load like any run; an image or regression run to per-channel int8 Linear / Conv2d layers
// (dynamic quantization, torch's quantize_dynamic) that eval/predict/serve load; and the per-tensor size table
// `loom summary --checkpoint DIR` prints.
#include <cstdio>
#include <filesystem>
#include <iostream>

#include <nlohmann/json.hpp>

#include "args.h"
#include "commands.h"
#include "lm_common.h"
#include "loom/data/file_util.h"
#include "loom/io/run_file.h"
#include "loom/io/safetensors.h"
#include "loom/models/gpt_quant.h"
#include "loom/models/language_model.h"
#include "loom/quant/quantize_dynamic.h"
#include "loom/runtime/classifier_run.h"
#include "loom/train/checkpoint.h"
#include "model_file.h"

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
  const io::SafetensorsFile f = io::load_run_safetensors(file.string());  // checked / decrypted
  std::printf("%-40s %-8s %-18s %14s\n", "tensor", "dtype", "shape", "bytes");
  double total = 0;
  for (const auto& [name, t] : f.tensors) {
    std::string shape = "(";
    for (int64_t d = 0; d < t.dim(); ++d) shape += (d ? ", " : "") + std::to_string(t.size(d));
    shape += ")";
    // A `.weight_q` tensor is raw ggml blocks; its dtype column says which.
    const auto q = f.metadata.find("loom_quantization");
    // A `.weight_int8` tensor holds int8 values in u8 storage (core has no int8 dtype yet).
    const std::string dtype = name.ends_with(".weight_q") && q != f.metadata.end() ? q->second
                              : name.ends_with(".weight_int8")                     ? std::string("int8")
                                                                                   : std::string(dtype_name(t.dtype()));
    const double bytes = double(t.numel()) * double(itemsize(t.dtype()));
    total += bytes;
    std::printf("%-40s %-8s %-18s %14.0f\n", name.c_str(), dtype.c_str(), shape.c_str(), bytes);
  }
  std::printf("total: %zu tensors, %s of tensor data, file %s\n", f.tensors.size(), mb(total).c_str(),
              mb(double(fs::file_size(file))).c_str());
  return 0;
}

namespace {

double file_bytes(const std::string& dir) {
  const fs::path p = fs::is_directory(dir) ? fs::path(dir) / "model.safetensors" : fs::path(dir);
  return fs::exists(p) ? double(fs::file_size(p)) : 0.0;
}

// An image or regression run: every Linear / Conv2d to per-channel int8 (quant::quantize_dynamic).
int quantize_classifier_int8(const std::string& checkpoint, const std::string& out) {
  runtime::ClassifierRun r = runtime::load_classifier(checkpoint);
  if (!quant::int8_layers_in(r.model->state_dict()).empty())
    throw UsageError("--checkpoint " + checkpoint + ": already quantized to int8");
  const std::vector<std::string> layers = quant::quantize_dynamic(*r.model);
  if (layers.empty())
    throw UsageError("--checkpoint " + checkpoint + ": the " + r.name + " model has no Linear or Conv2d layer to "
                     "quantize");
  DataOptions data{.spec = r.data_spec, .target = r.target, .image_size = r.image_size, .seed = r.seed};
  data.normalize = !r.mean.empty();
  data.norm = {r.mean, r.std};
  io::Metadata meta = model_metadata(r.name, r.shape, r.classes, data);
  // The source's pruning record stays true of the weights (masks folded in, widths kept).
  if (auto it = r.metadata.find("loom.pruning"); it != r.metadata.end()) meta["loom.pruning"] = it->second;
  nlohmann::ordered_json quantization = {{"format", "int8"}, {"scheme", "per_channel_symmetric"},
                                         {"activations", "dynamic per-tensor u8, reduce_range"},
                                         {"layers", layers}, {"source", checkpoint}};
  meta["loom.quantization"] = "int8";
  nlohmann::ordered_json cfg = derived_run_config(checkpoint, r.name);
  cfg["quantization"] = quantization;

  fs::create_directories(out);
  begin_run_folder(out);
  train::save_weights((fs::path(out) / "model.safetensors").string(), *r.model, meta);
  io::write_file_atomic((fs::path(out) / "config.json").string(), cfg.dump(2) + "\n");
  finish_run_folder(out);  // manifest, then encryption with --encrypt-key-file
  std::string names;
  for (const auto& l : layers) names += (names.empty() ? "" : ", ") + l;
  std::cout << "quantized " << checkpoint << " (" << r.name << ") to int8: " << out << " (model.safetensors "
            << mb(file_bytes(checkpoint)) << " -> " << mb(file_bytes(out)) << "; layers " << names << ")\n";
  return 0;
}

}  // namespace

int cmd_quantize(const Argv& argv) {
  std::string checkpoint, format, out;
  Args a("loom quantize",
         "Quantize a run folder: a GPT run to ggml's Q8_0 or Q4_0 blocks (a run folder generate/eval load), or an "
         "image/regression run to per-channel int8 Linear and Conv2d layers with dynamically quantized activations "
         "(torch's quantize_dynamic; a run folder eval/predict/serve load).");
  a.option("--checkpoint", &checkpoint, "DIR", "the run folder (GPT, Hugging Face GPT-2, or image/regression run; "
           "required)");
  a.choice("--format", &format, {"q8_0", "q4_0", "int8"}, "q8_0 | q4_0 for GPT runs, int8 for image/regression runs "
           "(required)");
  a.option("--out", &out, "DIR", "the folder to write (required; must differ from --checkpoint)");
  a.parse(argv);
  if (checkpoint.empty() || format.empty() || out.empty())
    throw UsageError("--checkpoint DIR, --format q8_0|q4_0|int8 and --out DIR are all required");
  if (!fs::exists(checkpoint)) throw UsageError("--checkpoint " + checkpoint + ": no such file or folder");
  if (fs::exists(out) && fs::equivalent(out, checkpoint)) throw UsageError("--out must differ from --checkpoint");
  const bool is_lm = is_lm_folder(checkpoint);
  if (format == "int8") {
    if (is_lm)
      throw UsageError("--format int8 is for image and regression runs; quantize a GPT run with --format q8_0 or "
                       "q4_0");
    return quantize_classifier_int8(checkpoint, out);
  }
  if (!is_lm)
    throw UsageError("--checkpoint " + checkpoint + ": --format " + format + " is for GPT runs (no config.json with "
                     "arch here); quantize an image or regression run with --format int8");
  auto lm = models::load_language_model(checkpoint);
  auto gpt = std::dynamic_pointer_cast<models::GPT>(lm);
  if (!gpt) throw UsageError("--checkpoint " + checkpoint + ": only GPT models are quantized, this is " + lm->name());
  const quant::QuantFormat f = quant::parse_format(format);
  models::quantize_gpt(*gpt, f);
  const auto source_config = io::read_run_json((fs::path(checkpoint) / "config.json").string());
  fs::create_directories(out);
  begin_run_folder(out);
  models::save_quantized_gpt(*gpt, f, out, {}, source_config);
  // The tokenizer comes along as plaintext (read through the source's checks and key), so the new folder is
  // encrypted under --encrypt-key-file alone.
  const auto copy_plain = [&](const fs::path& src, const fs::path& dst) {
    io::write_file_atomic(dst.string(), io::read_run_file(src.string()));
  };
  for (const char* name : kTokenizerFiles) {
    const fs::path src = fs::path(checkpoint) / name;
    if (fs::is_directory(src)) {
      fs::create_directories(fs::path(out) / name);
      for (const auto& e : fs::directory_iterator(src))
        if (e.is_regular_file()) copy_plain(e.path(), fs::path(out) / name / e.path().filename());
    } else if (fs::exists(src)) {
      copy_plain(src, fs::path(out) / name);
    }
  }
  finish_run_folder(out);  // manifest, then encryption with --encrypt-key-file
  std::cout << "quantized " << checkpoint << " to " << format << ": " << out << " (model.safetensors "
            << mb(file_bytes(checkpoint)) << " -> " << mb(file_bytes(out)) << ")\n";
  return 0;
}

}  // namespace loom::cli
