// Model loading: wall time and peak memory of `loom generate`'s load (runtime::load_run) for a GPT-2 124M.
//   load_bench make DIR        random GPT-2 124M (seed 1): DIR/hf (model.safetensors, config.json, tokenizer/),
//                              DIR/gpt2_f32.gguf, DIR/gpt2_q8_0.gguf, DIR/gpt2_q4_0.gguf, `loom quantize` run
//                              folders DIR/run_q8_0 and DIR/run_q4_0 (manifest.json included), and DIR/tiny_q4_0
//                              (GPT-2's tokenizer, a ~1 MB model: loading it measures the floor of every load)
//   load_bench load PATH       load PATH once as `loom generate --checkpoint PATH` does; print the load's seconds,
//                              the process's peak RSS and the file's size
//   load_bench floor           the part of a load's peak that is not the model: the process before loading and
//                              GPT-2's tokenizer (what every GPT-2 run folder and GGUF file builds), resident and peak
// Run one load per process: peak RSS (getrusage's ru_maxrss) never goes down, so a second load in the same
// process would measure the first. Prints one JSON object per line.
#include <malloc.h>
#include <sys/resource.h>
#include <unistd.h>

#include <chrono>
#include <cstdio>
#include <filesystem>
#include <string>

#include "loom/export/gguf_export.h"
#include "loom/loom.h"
#include "loom/runtime/run.h"

using namespace loom;
namespace fs = std::filesystem;

namespace {

double now() { return std::chrono::duration<double>(std::chrono::steady_clock::now().time_since_epoch()).count(); }

double peak_rss_mb() {
  rusage u{};
  getrusage(RUSAGE_SELF, &u);
  return double(u.ru_maxrss) / 1024.0;  // Linux reports KiB
}

uint64_t bytes_of(const fs::path& p) {
  if (!fs::is_directory(p)) return fs::file_size(p);
  return fs::file_size(p / "model.safetensors");
}

int make(const std::string& dir) {
  fs::create_directories(dir);
  manual_seed(1);
  models::GPT gpt(models::GPTConfig{});  // GPT-2 124M: 12 layers, 768 wide, context 1024, vocabulary 50,257
  gpt.eval();
  gpt.save(dir + "/hf");
  const text::BPETokenizer tok = text::BPETokenizer::gpt2();
  runtime::save_run_tokenizer(tok, dir + "/hf");  // load_run wants the tokenizer beside the weights
  for (const char* t : {"f32", "q8_0", "q4_0"})
    export_::save_gpt_gguf(gpt, tok, dir + "/gpt2_" + t + ".gguf", {.type = export_::parse_gguf_type(t)});
  // `loom quantize` run folders (with the manifest it writes), and the floor: a GPT of GPT-2's vocabulary that is
  // almost all tokenizer (32 wide, one layer; its q4_0 blocks are ~1 MB), whose load is the process plus the tokenizer.
  auto quantized_run = [&](models::GPT& g, quant::QuantFormat f, const std::string& out) {
    models::quantize_gpt(g, f);
    models::save_quantized_gpt(g, f, out);
    runtime::save_run_tokenizer(tok, out);
    trust::write_manifest(out);
  };
  for (quant::QuantFormat f : {quant::QuantFormat::q8_0, quant::QuantFormat::q4_0}) {
    manual_seed(1);
    models::GPT g(models::GPTConfig{});
    quantized_run(g, f, dir + "/run_" + quant::format_name(f));
  }
  models::GPT tiny(models::GPTConfig{.n_positions = 64, .n_embd = 32, .n_layer = 1, .n_head = 1});
  quantized_run(tiny, quant::QuantFormat::q4_0, dir + "/tiny_q4_0");
  std::printf("{\"bench\": \"load_make\", \"dir\": \"%s\"}\n", dir.c_str());
  return 0;
}

double rss_mb() {  // resident now (VmRSS), where ru_maxrss is the high-water mark
  std::FILE* f = std::fopen("/proc/self/statm", "r");
  long pages = 0, resident = 0;
  if (f) {
    if (std::fscanf(f, "%ld %ld", &pages, &resident) != 2) resident = 0;
    std::fclose(f);
  }
  return double(resident) * double(::sysconf(_SC_PAGESIZE)) / 1048576.0;
}

int load(const std::string& path) {
  const double before = peak_rss_mb(), t0 = now();
  const runtime::Run r = runtime::load_run(path);
  const double s = now() - t0;
  std::printf("{\"bench\": \"load\", \"path\": \"%s\", \"seconds\": %.3f, \"peak_rss_mb\": %.1f, "
              "\"rss_before_mb\": %.1f, \"rss_after_mb\": %.1f, \"file_mb\": %.1f, \"peak_over_file\": %.3f, "
              "\"params\": %lld}\n",
              path.c_str(), s, peak_rss_mb(), before, rss_mb(), double(bytes_of(path)) / 1048576.0,
              peak_rss_mb() / (double(bytes_of(path)) / 1048576.0), (long long)r.lm->num_parameters());
  return 0;
}

int floor() {
  const double process = rss_mb();
  const auto tok = std::make_shared<text::BPETokenizer>(text::BPETokenizer::gpt2());
  ::malloc_trim(0);
  std::printf("{\"bench\": \"load_floor\", \"process_mb\": %.1f, \"with_tokenizer_mb\": %.1f, "
              "\"peak_rss_mb\": %.1f, \"vocab\": %lld}\n",
              process, rss_mb(), peak_rss_mb(), (long long)tok->vocab_size());
  return 0;
}

}  // namespace

int main(int argc, char** argv) {
  try {
    const std::string cmd = argc > 2 ? argv[1] : "";
    if (cmd == "make") return make(argv[2]);
    if (cmd == "load") return load(argv[2]);
    if (argc == 2 && std::string(argv[1]) == "floor") return floor();
    std::fprintf(stderr, "usage: load_bench make DIR | load_bench load PATH | load_bench floor\n");
    return 2;
  } catch (const std::exception& e) {
    std::fprintf(stderr, "load_bench: %s\n", e.what());
    return 1;
  }
}
