// ONNX export of a run, checked and timed in onnxruntime-node beside loom, one JSON line:
//   build/bench/onnx_bench CHECKPOINT ORT_DIR [batch] [seq] [reps]
// CHECKPOINT: a classifier run, a GPT run / HF GPT-2 folder, or "random-gpt2" (GPT-2 124M shape, random
// N(0, 0.02) weights, saved to a temporary folder first). ORT_DIR: scripts/install_onnxruntime_node.sh's
// folder. Prints export seconds, file bytes, max |onnxruntime - loom| over the logits (and the largest |logit|
// for scale), and the best-of-reps forward milliseconds of each, onnxruntime with one intra-op thread and loom
// with OMP_NUM_THREADS as set. The ONNX file is written next to the inputs in $TMPDIR and removed afterwards.
#include <unistd.h>

#include <chrono>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <functional>
#include <iostream>
#include <optional>
#include <random>
#include <sstream>

#include "bench_util.h"
#include "loom/loom.h"

using namespace loom;
namespace fs = std::filesystem;

namespace {

std::string slurp(const fs::path& p) {
  std::ifstream f(p, std::ios::binary);
  std::stringstream s;
  s << f.rdbuf();
  return s.str();
}

void spit(const fs::path& p, std::string_view bytes) {
  std::ofstream f(p, std::ios::binary);
  f.write(bytes.data(), std::streamsize(bytes.size()));
}

}  // namespace

int main(int argc, char** argv) {
  if (argc < 3) {
    std::fprintf(stderr, "usage: onnx_bench CHECKPOINT ORT_DIR [batch] [seq] [reps]\n");
    return 2;
  }
  std::string checkpoint = argv[1];
  const std::string ort = argv[2];
  const int64_t batch = argc > 3 ? std::atoll(argv[3]) : 1;
  int64_t seq = argc > 4 ? std::atoll(argv[4]) : 64;
  const int reps = argc > 5 ? std::atoi(argv[5]) : 3;
  const fs::path tmp = fs::temp_directory_path() / ("loom_onnx_bench_" + std::to_string(::getpid()));
  fs::create_directories(tmp);
  try {
    if (checkpoint == "random-gpt2") {
      manual_seed(0);
      models::GPT(models::GPTConfig{}).save((tmp / "gpt2").string());
      checkpoint = (tmp / "gpt2").string();
    }
    const fs::path model_file = tmp / "model.onnx";
    onnx::OnnxExportSummary s;
    const auto t0 = std::chrono::steady_clock::now();
    s = onnx::export_onnx_run(checkpoint, model_file.string());
    const double export_s = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();

    // The model as loom runs it (no tokenizer needed: the inputs are random ids).
    models::LanguageModelPtr lm;
    std::optional<runtime::ClassifierRun> cls;
    if (runtime::is_lm_folder(checkpoint)) {
      lm = models::load_language_model(checkpoint);
      lm->eval();
    } else {
      cls = runtime::load_classifier(checkpoint);
    }
    Tensor x;
    std::function<Tensor()> forward;
    std::string input_name, type;
    if (lm) {
      seq = std::min(seq, lm->context());
      std::mt19937 rng(1);
      std::vector<int64_t> ids(size_t(batch * seq));
      for (auto& v : ids) v = int64_t(rng() % uint32_t(lm->vocab_size()));
      x = tensor(ids, {batch, seq});
      forward = [&] { return (*lm)(x); };
      input_name = "input_ids", type = "int64";
    } else {
      Shape shape = models::input_shape(cls->name, cls->shape, batch);
      manual_seed(1);
      x = randn(shape);
      forward = [&] { return (*cls->model)(x); };
      input_name = "input", type = "float32";
    }
    NoGradGuard ng;
    Tensor want;
    const double loom_s = bench::best_seconds(reps, [&] { want = forward(); });

    const Tensor xc = x.contiguous();
    spit(tmp / "in.bin", {static_cast<const char*>(xc.raw_data()), size_t(xc.numel()) * itemsize(xc.dtype())});
    nlohmann::json job = {{"runs", {{{"inputs", {{input_name, {{"type", type}, {"dims", x.shape()}, {"file", (tmp / "in.bin").string()}}}}},
                                     {"output", "logits"}, {"out_file", (tmp / "out.bin").string()}, {"repeat", reps}}}}};
    spit(tmp / "job.json", job.dump());
    const std::string cmd = "ORT_DIR='" + ort + "' node " LOOM_BENCH_SOURCE_DIR "/../tests/onnx/run_onnx.cjs '" +
                            model_file.string() + "' '" + (tmp / "job.json").string() + "'";
    FILE* p = popen(cmd.c_str(), "r");
    std::string line;
    char buf[4096];
    while (p && std::fgets(buf, sizeof buf, p)) line += buf;
    if (!p || pclose(p) != 0) throw Error("onnxruntime-node failed: " + line);
    const nlohmann::json res = nlohmann::json::parse(line);
    const std::string bytes = slurp(tmp / "out.bin");
    Tensor got = empty(want.shape());
    LOOM_CHECK(bytes.size() == size_t(got.numel()) * 4, "onnxruntime's output has ", bytes.size(), " bytes, expected ",
               got.numel() * 4);
    std::memcpy(got.raw_data(), bytes.data(), bytes.size());
    nlohmann::json out = {{"checkpoint", argv[1]},
                          {"model", s.model},
                          {"input", x.shape()},
                          {"nodes", s.nodes},
                          {"file_bytes", s.file_bytes},
                          {"export_s", export_s},
                          {"max_abs_diff", (got - want).abs().max().item<double>()},
                          {"max_abs_logit", want.abs().max().item<double>()},
                          {"loom_ms", loom_s * 1e3},
                          {"onnxruntime_ms", res["best_ms"]}};
    std::cout << out.dump() << "\n";
  } catch (const std::exception& e) {
    std::fprintf(stderr, "onnx_bench: %s\n", e.what());
    fs::remove_all(tmp);
    return 1;
  }
  fs::remove_all(tmp);
  return 0;
}
