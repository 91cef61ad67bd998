// loom: train, evaluate and use the seed models from the command line.
//   loom train --model cnn --data fashion-mnist --epochs 5 --out runs/cnn
//   loom predict --checkpoint runs/cnn shoe.png
// Exit status: 0 success, 1 runtime error (missing data, corrupt checkpoint), 2 usage error.
#include <sys/resource.h>
#include <unistd.h>

#include <cstdio>
#include <filesystem>
#include <new>
#include <stdexcept>
#include <exception>
#include <iostream>
#include <map>

#include <nlohmann/json.hpp>

#include "args.h"
#include "commands.h"
#include "loom/core/limits.h"
#include "loom/dist/comm.h"
#include "model_file.h"

namespace loom::cli {

double peak_rss_mb() {
  rusage ru{};
  getrusage(RUSAGE_SELF, &ru);
  return double(ru.ru_maxrss) / 1024.0;  // ru_maxrss is in KiB on Linux
}

namespace {

const char* kUsage =
    "usage: loom <command> [options]\n\n"
    "commands:\n"
    "  train     train a model and save the run; --model picks the task: mlp, lenet, cnn (classifier), linreg\n"
    "            (regression), lstm-lm, gpt (language model), seq2seq (loom train --help lists each one's options)\n"
    "  distill   train a student from a teacher run: knowledge distillation (--teacher DIR --model mlp)\n"
    "  eval      evaluate a saved model on a dataset's test split\n"
    "  predict   top-5 classes for image files (PNG/JPEG/BMP) or idx:FILE:INDEX\n"
    "  summary   the layers, output shapes and parameter counts of a model\n"
    "  info      version, build, CPU features and threads\n"
    "  generate  text from a language model (--checkpoint DIR --prompt TEXT)\n"
    "  tokenize  print the token ids of a text file; detokenize: the reverse\n"
    "  translate a seq2seq run's translation of texts (--checkpoint DIR \"March 5, 1999\")\n"
    "  privacy   epsilon of DP-SGD (--noise S --sample-rate Q --steps N --delta D)\n"
    "  federate  federated averaging over simulated (or MPI) clients\n"
    "  verify    check a run folder's manifest (and --pub signature); keygen, sign, encrypt: make keys,\n"
    "            sign a run, encrypt it at rest. Loading takes --key-file F, --require-signature PUB, --skip-verify\n"
    "            (train, quantize, prune, federate take --encrypt-key-file F: the run is written encrypted at rest)\n"
    "  quantize  a GPT run to ggml Q8_0/Q4_0 weights, an image run to int8 (--checkpoint DIR --format q8_0|q4_0|int8\n"
    "            --out DIR2)\n"
    "  export    a model for another runtime: a GPT as llama.cpp's GGUF (--checkpoint DIR --format gguf\n"
    "            --type f32|f16|q8_0|q4_0 --out model.gguf; generate/eval load a GPT-2 .gguf back), or an image run\n"
    "            or a GPT as ONNX opset 17 (--checkpoint DIR --format onnx --out model.onnx)\n"
    "  prune     an image run (--checkpoint DIR --method l1|random|global|structured --amount F --out DIR2);\n"
    "            fine-tune it with train --init DIR2\n"
    "  audit-labels  likely label errors by confident learning (K-fold cross-validation), issues.csv\n"
    "  autolabel     label a dataset from a labelled part (FixMatch consistency training, or pseudo-labelling rounds)\n"
    "  explain   attribution heat maps (saliency, integrated gradients, Grad-CAM, occlusion; LM tokens/attention)\n"
    "  show      an image grid of samples with labels, or a model's predictions (red when wrong)\n"
    "  serve     an OpenAI-compatible HTTP server for a run folder (--checkpoint DIR --port 8080)\n\n"
    "Run 'loom <command> --help' for the options of a command.\n";

}  // namespace

int run(int argc, char** argv) {
  if (argc < 2) {
    std::cerr << "loom: missing command\n" << kUsage;
    return 2;
  }
  const std::string cmd = argv[1];
  if (cmd == "--help" || cmd == "-h" || cmd == "help") {
    std::cout << kUsage;
    return 0;
  }
  if (cmd == "--version") {
    std::cout << "loom " << loom_version() << "\n";
    return 0;
  }
  static const std::map<std::string, int (*)(const Argv&)> commands = {
      {"train", cmd_train}, {"eval", cmd_eval}, {"predict", cmd_predict}, {"summary", cmd_summary}, {"info", cmd_info},
      {"generate", cmd_generate}, {"tokenize", cmd_tokenize}, {"detokenize", cmd_detokenize},
      {"translate", cmd_translate}, {"privacy", cmd_privacy}, {"federate", cmd_federate}, {"verify", cmd_verify},
      {"keygen", cmd_keygen}, {"sign", cmd_sign}, {"encrypt", cmd_encrypt}, {"quantize", cmd_quantize},
      {"prune", cmd_prune}, {"export", cmd_export},
      {"audit-labels", cmd_audit_labels}, {"autolabel", cmd_autolabel}, {"explain", cmd_explain}, {"show", cmd_show},
      {"serve", cmd_serve}, {"distill", cmd_distill}};
  auto it = commands.find(cmd);
  if (it == commands.end()) {
    std::cerr << "loom: unknown command '" << cmd << "'\n" << kUsage;
    return 2;
  }
  try {
    Argv rest(argv + 2, argv + argc);
    if (cmd != "encrypt" && cmd != "keygen" && cmd != "sign" && cmd != "verify") rest = take_trust_options(
        rest, cmd == "train" || cmd == "distill" || cmd == "quantize" || cmd == "prune" || cmd == "federate");
    return it->second(rest);
  } catch (const HelpRequested& h) {
    std::cout << h.text;
    return 0;
  } catch (const UsageError& e) {
    std::cerr << "loom " << cmd << ": error: " << e.what() << "\n(run 'loom " << cmd << " --help' for the options)\n";
    return 2;
  }
}

}  // namespace loom::cli

int main(int argc, char** argv) {
  // Whatever escapes a command becomes one clear line and status 1, never an abort: messages from loom::Error
  // name the file and field; the standard exceptions below are given the context their what() lacks.
  const std::string cmd = argc > 1 ? std::string(" ") + argv[1] : "";
  try {
    return loom::cli::run(argc, argv);
  } catch (const std::bad_alloc&) {
    std::cout.flush();
    const int64_t avail = loom::available_memory_bytes();
    std::cerr << "\nloom" << cmd << ": error: out of memory: a size in the input files or options needs more memory "
              << "than this machine has"
              << (avail >= 0 ? " (" + loom::format_bytes(double(avail)) + " available)" : std::string()) << "; use "
              << "smaller sizes\n";
    return 1;
  } catch (const std::length_error& e) {
    std::cerr << "\nloom" << cmd << ": error: a size in the input files or options is too large (" << e.what()
              << ")\n";
    return 1;
  } catch (const nlohmann::json::exception& e) {
    std::cerr << "\nloom" << cmd << ": error: a JSON file or metadata field has an unexpected type or value ("
              << e.what() << ")\n";
    return 1;
  } catch (const std::filesystem::filesystem_error& e) {
    std::cerr << "\nloom" << cmd << ": error: " << e.what() << "\n";
    return 1;
  } catch (const std::exception& e) {
    std::cout.flush();
    // A progress bar may be mid-line on a terminal; start the message on a line of its own.
    std::cerr << (isatty(fileno(stdout)) ? "\n" : "") << "loom: error: " << e.what() << "\n";
    loom::dist::abort_job_if_distributed(1);  // one failing rank ends the job now, not at the collective time-out
    return 1;
  } catch (...) {
    std::cerr << "\nloom: error: unexpected failure\n";
    loom::dist::abort_job_if_distributed(1);
    return 1;
  }
}
