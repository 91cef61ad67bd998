// loom translate --checkpoint DIR TEXT...: a trained seq2seq run folder (loom train --model seq2seq) turns each
// text into its translation, greedy or with --beam K.
//   loom translate --checkpoint runs/seq2seq-dates "March 5, 1999" "5th of June 2001"
#include <filesystem>
#include <fstream>
#include <iostream>

#include <nlohmann/json.hpp>

#include "args.h"
#include "loom/io/json_fields.h"
#include "commands.h"
#include "loom/models/seq2seq.h"
#include "loom/ops/ops.h"
#include "loom/text/dates.h"

namespace loom::cli {

int cmd_translate(const Argv& argv) {
  std::string dir;
  std::vector<std::string> texts;
  int64_t beam = 1;
  bool as_json = false;
  Args a("loom translate", "Translate texts with a seq2seq run folder (e.g. dates -> ISO 8601).");
  a.option("--checkpoint", &dir, "DIR", "the run folder written by loom train --model seq2seq (required)");
  a.option("--beam", &beam, "K", "beam width (default 1: greedy)", {.min = 1, .max = 64});
  a.flag("--json", &as_json, "one JSON object per text");
  a.positionals(&texts, "TEXT", "the texts to translate", 1);
  a.parse(argv);
  if (dir.empty()) throw UsageError("--checkpoint DIR is required");
  auto model = models::load_seq2seq(dir);
  const text::DatesVocab& v = text::dates_vocab();
  // The run's vocabulary must be the one this build encodes with (ids are positions in it).
  const std::string cfg_path = (std::filesystem::path(dir) / "config.json").string();
  const nlohmann::json cfg = io::read_json_file(cfg_path);
  const io::JsonFields f(cfg, cfg_path);
  LOOM_CHECK(f.string("vocab", v.chars()) == v.chars(), cfg_path,
             ": field 'vocab' holds a vocabulary this build does not know (only the dates task's is supported)");
  const int64_t max_len = f.integer("max_len", 16, 1, 4096);
  for (const auto& s : texts) {
    LOOM_CHECK(!s.empty(), "loom translate: cannot translate an empty text");
    Tensor src = tensor(v.encode(s)).unsqueeze(0);
    std::string out;
    double score = 0;
    if (beam > 1) {
      auto h = model->beam_search(src, beam, max_len)[0];
      out = v.decode(h.tokens), score = h.score;
    } else {
      out = v.decode(model->greedy_decode(src, {}, max_len)[0]);
    }
    if (as_json) {
      nlohmann::json j = {{"input", s}, {"output", out}};
      if (beam > 1) j["log_prob"] = score;
      std::cout << j.dump() << "\n";
    } else {
      std::cout << s << "\t" << out << "\n";
    }
  }
  return 0;
}

}  // namespace loom::cli
