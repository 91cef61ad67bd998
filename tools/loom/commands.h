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
// Knowledge distillation (cmd_distill.cpp): a student classifier from a teacher run, on loom train's spine.
int cmd_distill(const Argv& args);
// `loom train` runs the task --model chooses (train_setup.h): cmd_train.cpp, cmd_train_lm.cpp,
// cmd_train_seq2seq.cpp, cmd_train_dp.cpp.
// Language models (cmd_generate.cpp, cmd_tokenize.cpp, cmd_eval_lm.cpp).
int cmd_generate(const Argv& args);
int cmd_tokenize(const Argv& args);
int cmd_detokenize(const Argv& args);
int cmd_eval_lm(const Argv& args);
// Sequence-to-sequence (cmd_translate.cpp): loom translate.
int cmd_translate(const Argv& args);
// Quantization (cmd_quantize.cpp): loom quantize; `loom summary --checkpoint DIR` prints the size table.
int cmd_quantize(const Argv& args);
int summary_checkpoint(const std::string& dir);
// Pruning (cmd_prune.cpp): loom prune; fine-tuning is loom train --init DIR.
int cmd_prune(const Argv& args);
// Export for other runtimes (cmd_export.cpp dispatches on --format): GGUF for llama.cpp (cmd_export_gguf.cpp),
// ONNX opset 17 (cmd_export_onnx.cpp).
int cmd_export(const Argv& args);
int cmd_export_gguf(const Argv& args);
int cmd_export_onnx(const Argv& args);

// Privacy and trust (cmd_privacy.cpp, cmd_train_dp.cpp, cmd_federate.cpp, cmd_trust.cpp).
int cmd_privacy(const Argv& args);
int cmd_federate(const Argv& args);
int cmd_verify(const Argv& args);
int cmd_keygen(const Argv& args);
int cmd_sign(const Argv& args);
int cmd_encrypt(const Argv& args);
// Takes the load options every command accepts (--key-file F, --require-signature PUB, --skip-verify) out of
// argv and sets loom::trust's load policy from them; and --encrypt-key-file F, accepted only when writes_runs.
Argv take_trust_options(const Argv& args, bool writes_runs);
// Around the writing of a run folder: begin removes the manifest (and decrypts a resumed encrypted run in place);
// finish writes the manifest and, with --encrypt-key-file, encrypts every file at rest (docs/privacy.md).
void begin_run_folder(const std::string& dir);
void finish_run_folder(const std::string& dir);

// Data quality and explanations (cmd_audit_labels.cpp, cmd_autolabel.cpp, cmd_explain.cpp, cmd_explain_lm.cpp,
// cmd_show.cpp; docs/data-and-explanations.md).
int cmd_audit_labels(const Argv& args);
int cmd_autolabel(const Argv& args);
int cmd_explain(const Argv& args);
int cmd_explain_lm(const Argv& args);
int cmd_show(const Argv& args);
// loom serve (cmd_serve.cpp): the OpenAI-compatible HTTP server in loom/serve/.
int cmd_serve(const Argv& args);

// Peak resident memory of this process so far, in MiB.
double peak_rss_mb();

}  // namespace loom::cli
