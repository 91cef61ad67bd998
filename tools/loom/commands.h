// The loom subcommands, one file each. Each takes the arguments after its name and returns the exit status;
// usage mistakes throw UsageError (status 2), runtime failures throw loom::Error (status 1).
//   int rc = loom::cli::cmd_info({});
#pragma once
#include <string>
#include <vector>

namespace loom::cli {

using Argv = std::vector<std::string>;

int cmd_train(const Argv& args);
int cmd_eval(const Argv& args);
int cmd_predict(const Argv& args);
int cmd_summary(const Argv& args);
int cmd_info(const Argv& args);
// Language models (cmd_train_lm.cpp, cmd_generate.cpp, cmd_tokenize.cpp, cmd_eval_lm.cpp).
int cmd_train_lm(const Argv& args);
int cmd_generate(const Argv& args);
int cmd_tokenize(const Argv& args);
int cmd_detokenize(const Argv& args);
int cmd_eval_lm(const Argv& args);
// Sequence-to-sequence (cmd_train_seq2seq.cpp, cmd_translate.cpp): loom train --model seq2seq, loom translate.
int cmd_train_seq2seq(const Argv& args);
int cmd_translate(const Argv& args);
// loom serve (cmd_serve.cpp): the OpenAI-compatible HTTP server in loom/serve/.
int cmd_serve(const Argv& args);

// Peak resident memory of this process so far, in MiB.
double peak_rss_mb();

}  // namespace loom::cli
