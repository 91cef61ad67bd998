// What `loom serve` computes with, linked without train, optim or dist: loom::runtime and its closure (models,
// text, io, trust and below). Saves a small GPT run folder with a char tokenizer, loads it with load_run, and
// checks that GenerationSession and BatchEngine give the same greedy text. tests/layers/CMakeLists.txt links
// every object of every library in runtime's closure (whole archive), so the link itself proves that the
// runtime needs no symbol of train (the run-folder reader it used to borrow) or of any other higher layer.
#include <unistd.h>

#include <cstdio>
#include <filesystem>
#include <string>

#include "loom/models/gpt.h"
#include "loom/runtime/batch_engine.h"
#include "loom/runtime/run.h"
#include "loom/runtime/session.h"
#include "loom/text/tokenizer.h"

int main() {
  using namespace loom;
  namespace fs = std::filesystem;
  const fs::path dir = fs::temp_directory_path() / ("loom_runtime_only_" + std::to_string(::getpid()));
  const std::string alphabet = "abcdefgh ";
  manual_seed(0);
  models::GPT({.vocab_size = int64_t(alphabet.size()), .n_positions = 32, .n_embd = 16, .n_layer = 1, .n_head = 2})
      .save(dir.string());
  runtime::save_run_tokenizer(*text::make_tokenizer("char", alphabet), dir.string());
  int status = 0;
  {
    runtime::Run run = runtime::load_run(dir.string());
    const runtime::GenerationOptions go{.max_new_tokens = 8, .sampling = {.temperature = 0}};
    runtime::GenerationSession session(run);
    const runtime::GenerationResult a = session.generate("abc", go, {});
    runtime::BatchEngine engine(run, {.slots = 2});
    auto h = engine.submit({.prompt = runtime::encode_prompt(run, "abc"), .options = go});
    const runtime::GenerationResult b = h ? h->wait() : runtime::GenerationResult{};
    engine.shutdown(false);
    if (run.kind != runtime::Run::Kind::language_model || !run.nonfinite.empty() || a.tokens.size() != 8 ||
        a.text != b.text) {
      std::fprintf(stderr, "runtime-only: session '%s' (%zu tokens) vs engine '%s'\n", a.text.c_str(),
                   a.tokens.size(), b.text.c_str());
      status = 1;
    } else {
      std::printf("runtime-only: '%s' from session and engine\n", a.text.c_str());
    }
  }
  fs::remove_all(dir);
  return status;
}
