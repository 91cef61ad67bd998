// loom eval on a language-model folder: the mean next-token cross-entropy over consecutive blocks of a text.
#include <cmath>
#include <iostream>

#include <nlohmann/json.hpp>

#include "args.h"
#include "commands.h"
#include "lm_common.h"
#include "model_file.h"
#include "loom/backend/backend.h"
#include "loom/core/limits.h"
#include "loom/data/file_util.h"
#include "loom/io/gguf.h"
#include "loom/io/json_fields.h"
#include "loom/io/run_file.h"
#include "loom/models/language_model.h"
#include "loom/runtime/run.h"
#include "loom/text/corpus.h"
#include "loom/text/lm_dataset.h"
#include "loom/text/utf8_check.h"
#include "loom/train/lm_steps.h"

namespace loom::cli {

int cmd_eval_lm(const Argv& argv) {
  std::string checkpoint, data_spec, tok_spec;
  int64_t context = 0, batch = 16, threads = 0, max_tokens = 0;
  bool json_out = false, val_only = false;
  Args a("loom eval (language model)",
         "The mean next-token cross-entropy (loss, and perplexity = exp(loss)) of a language-model folder over\n"
         "consecutive non-overlapping blocks of --context tokens of a text.");
  a.option("--checkpoint", &checkpoint, "DIR", "the model folder or a GPT-2 .gguf file (required)");
  a.option("--data", &data_spec, "SPEC", "kjv or text:FILE (default: the run's training data)");
  a.option("--tokenizer", &tok_spec, "SPEC", "override the folder's tokenizer (gpt2, bpe:PATH, a tokenizer file)");
  a.option("--context", &context, "T", "tokens per block (default: the run's context, else the model's)", {.min = 1});
  a.option("--batch-size", &batch, "B", "blocks per forward pass (default 16)", {.min = 1, .max = 4096});
  a.option("--max-tokens", &max_tokens, "N", "evaluate at most N tokens (default: all)", {.min = 0});
  a.flag("--val-split", &val_only, "only the last 10% of the text (the split loom train validates on)");
  a.option("--threads", &threads, "T", "compute threads (default: all cores)", {.min = 1, .max = 1024});
  a.flag("--json", &json_out, "print one JSON object");
  a.parse(argv);
  if (checkpoint.empty()) throw UsageError("--checkpoint is required");
  if (!data_spec.empty() && data_spec != "kjv" && !data_spec.starts_with("text:"))
    throw UsageError("--data must be kjv or text:FILE for a language model");
  if (threads > 0) set_num_threads(int(threads));

  // A GGUF file (runtime/gguf_gpt.h) carries its own vocabulary and no training record: --data is required.
  const bool gguf = io::is_gguf_file(checkpoint);
  const std::string cfg_path = gguf ? checkpoint : checkpoint + "/config.json";
  const auto cfg = gguf ? nlohmann::json::object() : io::read_run_json(cfg_path);
  const nlohmann::json run = io::JsonFields(cfg, cfg_path).has("loom_train") ? cfg["loom_train"]
                                                                              : nlohmann::json::object();
  const io::JsonFields runf(run, cfg_path + ": loom_train");
  if (data_spec.empty()) data_spec = runf.string("data", "");
  if (data_spec.empty()) throw UsageError("--data is required (the folder does not record its training data)");
  runtime::Run gguf_run;
  if (gguf) gguf_run = runtime::load_run(checkpoint);
  auto model = gguf ? gguf_run.lm : models::load_language_model(checkpoint);
  const std::string nonfinite = nonfinite_weights(model->state_dict());
  if (context == 0) context = runf.integer("context", 0, 1, limits::kMaxContext);
  if (context == 0) context = model->context();
  if (context == 0) throw UsageError("--context is required for this model");
  if (model->context() > 0 && context > model->context())
    throw UsageError("--context " + std::to_string(context) + " is longer than the model's " +
                     std::to_string(model->context()));
  text::TokenizerPtr tok = !tok_spec.empty() ? tokenizer_from_spec(tok_spec, "")
                           : gguf            ? gguf_run.tokenizer
                                             : load_run_tokenizer(checkpoint);
  const std::string corpus = text::load_corpus(data_spec);
  text::check_utf8(corpus, data_spec.starts_with("text:") ? data_spec.substr(5) : data_spec, text::Utf8Errors::warn);
  std::vector<int64_t> ids = tok->encode(corpus);
  for (int64_t t : ids)
    LOOM_CHECK(t < model->vocab_size(), "token id ", t, " is outside the model's vocabulary of ", model->vocab_size());
  if (val_only) ids = std::vector<int64_t>(ids.begin() + int64_t(double(ids.size()) * 0.9), ids.end());
  LOOM_CHECK(int64_t(ids.size()) > context, data_spec, " has ", ids.size(), " tokens, fewer than one block of ",
             context + 1);
  text::LanguageModelDataset ds(std::vector<int32_t>(ids.begin(), ids.end()), context);
  const double loss = train::evaluate_lm(*model, ds, batch, max_tokens);
  const int64_t blocks = std::min((ds.size() + context - 1) / context,
                                  max_tokens > 0 ? std::max<int64_t>(1, max_tokens / context) : INT64_MAX);
  if (json_out) {
    nlohmann::ordered_json j;
    j["event"] = "eval", j["checkpoint"] = checkpoint, j["data"] = data_spec, j["tokens"] = blocks * context;
    j["loss"] = loss, j["perplexity"] = std::exp(loss);
    std::cout << j.dump() << "\n";
  } else {
    std::printf("%s on %s (%lld tokens in blocks of %lld)\n  loss        %.6g\n  perplexity  %.6g\n", checkpoint.c_str(),
                data_spec.c_str(), (long long)(blocks * context), (long long)context, loss, std::exp(loss));
  }
  if (!nonfinite.empty()) warn_nonfinite(checkpoint, nonfinite);
  if (nonfinite.empty() && !std::isfinite(loss))
    std::cerr << "loom: WARNING: the evaluation of " << checkpoint << " gave a non-finite loss; it is meaningless\n";
  return nonfinite.empty() && std::isfinite(loss) ? 0 : 1;
}

}  // namespace loom::cli
