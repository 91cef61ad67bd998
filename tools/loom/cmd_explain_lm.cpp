// loom explain for language-model runs: per-token gradient x input for the next-token prediction (an HTML
// page and coloured terminal text) and, for a GPT, its attention maps as a layer x head PNG grid.
#include <filesystem>
#include <iostream>
#include <unistd.h>

#include "args.h"
#include "commands.h"
#include "loom/explain/lm_attribution.h"
#include "loom/explain/pictures.h"
#include "loom/io/safetensors.h"
#include "loom/train/png.h"
#include "lm_common.h"

namespace loom::cli {

int cmd_explain_lm(const Argv& argv) {
  std::string checkpoint, prompt, method = "grad-x-input", out = "explain", target_s;
  int64_t cell = 160;
  bool color = false, no_color = false;
  Args a("loom explain (language models)",
         "Which prompt tokens the next-token prediction rests on (gradient x input on the embeddings), as an HTML\n"
         "page and coloured terminal text; or a GPT's attention weights as a PNG grid (rows: layers, columns: heads).");
  a.option("--checkpoint", &checkpoint, "DIR", "a language-model run folder (required)");
  a.option("--prompt", &prompt, "TEXT", "the text to explain (required)");
  a.choice("--method", &method, {"grad-x-input", "attention"}, "what to show (default grad-x-input)");
  a.option("--target", &target_s, "TEXT", "grad-x-input: explain this next token (default: the predicted one)");
  a.option("--cell", &cell, "PX", "attention: pixels per map (default 160)", {.min = 16, .max = 1024});
  a.flag("--color", &color, "colour the terminal view even when stdout is not a terminal");
  a.flag("--no-color", &no_color, "print scores instead of colours");
  a.option("--out", &out, "DIR", "output folder (default explain)");
  a.parse(argv);
  if (checkpoint.empty()) throw UsageError("--checkpoint is required");
  if (prompt.empty()) throw UsageError("--prompt is required");
  auto model = models::load_language_model(checkpoint);
  auto tok = load_run_tokenizer(checkpoint);
  const std::vector<int64_t> ids = tok->encode(prompt);
  LOOM_CHECK(!ids.empty(), "--prompt '", prompt, "' encodes to no tokens");
  std::vector<std::string> pieces;
  for (int64_t id : ids) pieces.push_back(tok->decode(std::span<const int64_t>(&id, 1)));
  std::error_code ec;
  std::filesystem::create_directories(out, ec);
  LOOM_CHECK(!ec && std::filesystem::is_directory(out), out, ": cannot create the folder (", ec.message(), ")");

  if (method == "attention") {
    auto* gpt = dynamic_cast<models::GPT*>(model.get());
    LOOM_CHECK(gpt != nullptr, checkpoint, ": attention maps need a GPT; this model is ", model->name());
    const auto maps = explain::gpt_attention(*gpt, ids);
    const std::string path = (std::filesystem::path(out) / "attention.png").string();
    train::write_png(path, explain::attention_grid(maps, int(cell)));
    std::cout << "wrote " << path << ": " << maps.size() << " layers x " << maps[0].size(0) << " heads, "
              << ids.size() << " tokens (rows: query position, columns: key position)\n";
    return 0;
  }
  int64_t target = -1;
  if (!target_s.empty()) {
    const std::vector<int64_t> t = tok->encode(target_s);
    LOOM_CHECK(t.size() == 1, "--target '", target_s, "' is ", t.size(), " tokens; give exactly one");
    target = t[0];
  }
  const auto r = explain::token_attributions(*model, ids, target);
  const std::string next = tok->decode(std::span<const int64_t>(&r.target, 1));
  const std::string title = "next token \"" + next + "\" (logit " + std::to_string(r.logit) + ")";
  const std::string path = (std::filesystem::path(out) / "tokens.html").string();
  io::write_file_atomic(path, explain::tokens_html(pieces, r.scores, title));
  std::cout << title << "\n";
  if ((isatty(fileno(stdout)) || color) && !no_color) {
    std::cout << explain::tokens_terminal(pieces, r.scores) << "\n";
  } else {
    for (size_t i = 0; i < pieces.size(); ++i) std::printf("  %-12s %+.4f\n", ("'" + pieces[i] + "'").c_str(), r.scores[i]);
  }
  std::cout << "wrote " << path << "\n";
  return 0;
}

}  // namespace loom::cli
