// Loads a run folder with the installed loom (loom::runtime::load_run) and streams generated text, as a C++
// user would: only <loom/loom.h>.  usage: stream_run RUN_DIR PROMPT
#include <loom/loom.h>

#include <cstdio>
#include <iostream>
#include <string>

int main(int argc, char** argv) {
  if (argc != 3) return 2;
  loom::runtime::Run run = loom::runtime::load_run(argv[1]);
  loom::runtime::GenerationSession session(run);
  std::string streamed;
  auto r = session.generate(argv[2], {.max_new_tokens = 20, .sampling = {.temperature = 0.8}, .seed = 1},
                            [&](const std::string& piece) {
                              std::cout << piece << std::flush;
                              streamed += piece;
                              return true;
                            });
  std::cout << "\n";
  std::fprintf(stderr, "%zu tokens, finish_reason %s\n", r.tokens.size(), r.finish_reason.c_str());
  return streamed == r.text && r.tokens.size() == 20 ? 0 : 1;
}
