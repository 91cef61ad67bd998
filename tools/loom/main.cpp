// loom: train, evaluate and use the seed models from the command line.
//   loom train --model cnn --data fashion-mnist --epochs 5 --out runs/cnn
//   loom predict --checkpoint runs/cnn shoe.png
// Exit status: 0 success, 1 runtime error (missing data, corrupt checkpoint), 2 usage error.
#include <sys/resource.h>
#include <unistd.h>

#include <cstdio>
#include <exception>
#include <iostream>
#include <map>

#include "args.h"
#include "commands.h"
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
    "  train     train a model (linreg, mlp, lenet, cnn; lstm-lm, gpt on text) on a dataset and save the run\n"
    "  eval      evaluate a saved model on a dataset's test split\n"
    "  predict   top-5 classes for image files (PNG/JPEG/BMP) or idx:FILE:INDEX\n"
    "  summary   the layers, output shapes and parameter counts of a model\n"
    "  info      version, build, CPU features and threads\n"
    "  generate  text from a language model (--checkpoint DIR --prompt TEXT)\n"
    "  tokenize  print the token ids of a text file; detokenize: the reverse\n"
    "  translate a seq2seq run's translation of texts (--checkpoint DIR \"March 5, 1999\")\n"
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
      {"translate", cmd_translate}, {"serve", cmd_serve}};
  auto it = commands.find(cmd);
  if (it == commands.end()) {
    std::cerr << "loom: unknown command '" << cmd << "'\n" << kUsage;
    return 2;
  }
  try {
    return it->second(Argv(argv + 2, argv + argc));
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
  try {
    return loom::cli::run(argc, argv);
  } catch (const std::exception& e) {
    std::cout.flush();
    // A progress bar may be mid-line on a terminal; start the message on a line of its own.
    std::cerr << (isatty(fileno(stdout)) ? "\n" : "") << "loom: error: " << e.what() << "\n";
    return 1;
  } catch (...) {
    std::cerr << "\nloom: error: unexpected failure\n";
    return 1;
  }
}
