// loom generate: text from a language-model folder (loom train's run folder, a GPT folder, or a Hugging Face
// GPT-2 folder), streamed token by token, with greedy / temperature / top-k / top-p / repetition-penalty
// sampling, stop strings and several prompts.
#include <chrono>
#include <iostream>

#include <nlohmann/json.hpp>

#include "args.h"
#include "commands.h"
#include "lm_common.h"
#include "loom/backend/backend.h"
#include "loom/data/file_util.h"
#include "loom/io/gguf.h"
#include "loom/runtime/session.h"

namespace loom::cli {

namespace {

// "\n", "\t", "\\" in --stop values, so a shell user can ask for a newline.
std::string unescape(const std::string& s) {
  std::string r;
  for (size_t i = 0; i < s.size(); ++i) {
    if (s[i] != '\\' || i + 1 == s.size()) {
      r += s[i];
      continue;
    }
    const char n = s[++i];
    r += n == 'n' ? '\n' : n == 't' ? '\t' : n == 'r' ? '\r' : n;
  }
  return r;
}

// Takes every `--name VALUE` / `--name=VALUE` out of argv (the parser accepts each option once).
std::vector<std::string> take_repeated(Argv& argv, const std::string& name) {
  std::vector<std::string> vals;
  Argv rest;
  for (size_t i = 0; i < argv.size(); ++i) {
    if (argv[i] == name) {
      if (i + 1 >= argv.size()) throw UsageError(name + " needs a value");
      vals.push_back(argv[++i]);
    } else if (argv[i].starts_with(name + "=")) {
      vals.push_back(argv[i].substr(name.size() + 1));
    } else {
      rest.push_back(argv[i]);
    }
  }
  argv = rest;
  return vals;
}

}  // namespace

int cmd_generate(const Argv& argv_in) {
  Argv argv = argv_in;
  std::vector<std::string> prompts = take_repeated(argv, "--prompt"), stops = take_repeated(argv, "--stop");
  std::string checkpoint, prompts_file, tok_spec;
  int64_t max_tokens = 200, top_k = 0, seed = 0, threads = 0;
  double temperature = 1.0, top_p = 1.0, rep = 1.0;
  bool greedy = false, json_out = false, no_prompt = false;
  Args a("loom generate",
         "Generate text from a language model folder (loom train's --out, or a Hugging Face GPT-2 folder),\n"
         "streaming each token as it is sampled. Options also accepted more than once: --prompt TEXT (each\n"
         "prompt is generated in turn; prompt i samples with seed S+i) and --stop STRING (generation ends\n"
         "before the first stop string; \\n, \\t, \\r are escapes). GPT-2 tokenizers also stop at <|endoftext|>.");
  a.option("--checkpoint", &checkpoint, "DIR", "the model folder, or a GPT-2 .gguf file (required)");
  a.option("--prompts-file", &prompts_file, "FILE", "one prompt per line (in addition to --prompt)");
  a.option("--max-tokens", &max_tokens, "N", "new tokens per prompt (default 200)", {.min = 0, .max = 1 << 20});
  a.option("--temperature", &temperature, "T", "softmax temperature (default 1; 0 = greedy)", {.min = 0});
  a.option("--top-k", &top_k, "K", "sample among the K most likely tokens (default 0: all)", {.min = 0});
  a.option("--top-p", &top_p, "P", "nucleus: the smallest set reaching probability P (default 1: off)",
           {.min = 0, .max = 1, .exclusive_min = true});
  a.option("--repetition-penalty", &rep, "R", "penalise tokens already in the text (default 1: off)",
           {.min = 0, .exclusive_min = true});
  a.flag("--greedy", &greedy, "always take the most likely token (same as --temperature 0)");
  a.option("--seed", &seed, "S", "sampling seed (default 0): the same seed gives the same text", {.min = 0});
  a.option("--tokenizer", &tok_spec, "SPEC", "override the model folder's tokenizer (gpt2, bpe:PATH, a tokenizer file)");
  a.option("--threads", &threads, "T", "compute threads (default: all cores)", {.min = 1, .max = 1024});
  a.flag("--no-prompt", &no_prompt, "print only the generated text, not the prompt before it");
  a.flag("--json", &json_out, "no streaming: one JSON object per prompt");
  a.parse(argv);
  if (checkpoint.empty()) throw UsageError("--checkpoint is required");
  if (!prompts_file.empty()) {
    const std::string all = data::read_file(prompts_file);
    size_t b = 0;
    for (size_t e; (e = all.find('\n', b)) != std::string::npos || b < all.size(); b = e + 1) {
      if (e == std::string::npos) e = all.size();
      if (e > b) prompts.push_back(all.substr(b, e - b));
    }
  }
  if (prompts.empty()) throw UsageError("give at least one --prompt (or --prompts-file)");
  if (!is_lm_folder(checkpoint) && !io::is_gguf_file(checkpoint))
    throw UsageError("--checkpoint " + checkpoint +
                     ": not a language-model folder (no config.json with a model) nor a GGUF file");
  for (auto& s : stops) s = unescape(s);
  if (threads > 0) set_num_threads(int(threads));

  runtime::Run run = runtime::load_run(checkpoint, {.tokenizer = tok_spec.empty() ? nullptr : tokenizer_from_spec(tok_spec, "")});
  LOOM_CHECK(run.nonfinite.empty(), checkpoint, " holds ", run.nonfinite,
             ": the model is broken (training diverged?) and cannot generate text");
  runtime::GenerationOptions go{.max_new_tokens = max_tokens,
                                .sampling = {.temperature = greedy ? 0.0 : temperature, .top_k = top_k, .top_p = top_p,
                                             .repetition_penalty = rep},
                                .seed = uint64_t(seed),
                                .stop = stops};
  std::vector<std::vector<int64_t>> encoded;
  for (size_t i = 0; i < prompts.size(); ++i) {
    try {
      encoded.push_back(runtime::encode_prompt(run, prompts[i]));
    } catch (const Error& e) {  // only the empty prompt is reworded (with its number); other errors pass as they are
      if (std::string(e.what()).find("the prompt is empty") == std::string::npos) throw;
      LOOM_FAIL("prompt ", i + 1, " is empty; give at least one character");
    }
  }
  // The library's session streams each piece of text as soon as it cannot be part of a stop string.
  runtime::GenerationSession session(run);
  int64_t total_new = 0;
  const auto t0 = std::chrono::steady_clock::now();
  for (size_t i = 0; i < prompts.size(); ++i) {
    if (!json_out && i > 0) std::cout << "\n\n";  // a blank line between outputs
    if (!json_out && !no_prompt) std::cout << prompts[i] << std::flush;
    go.seed = uint64_t(seed) + i;  // prompt i samples with seed S+i
    runtime::GenerationResult r = session.generate(encoded[i], go, [&](const std::string& piece) {
      if (!json_out) std::cout << piece << std::flush;
      return true;
    });
    total_new += int64_t(r.tokens.size());
    if (json_out) {
      nlohmann::ordered_json j;
      j["event"] = "generation", j["index"] = i, j["prompt"] = prompts[i], j["text"] = r.text;
      j["new_tokens"] = r.tokens.size();
      std::cout << j.dump() << "\n";
    }
  }
  const double secs = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  if (!json_out) {
    std::cout << "\n" << std::flush;
    std::fprintf(stderr, "(%lld new tokens in %.2f s, %.1f tokens/s)\n", (long long)total_new, secs,
                 secs > 0 ? double(total_new) / secs : 0.0);
  }
  return 0;
}

}  // namespace loom::cli
