// loom tokenize / detokenize: text <-> token ids, as space-separated decimal ids.
//   loom tokenize --tokenizer gpt2 notes.txt > ids.txt;   loom detokenize --tokenizer gpt2 ids.txt
#include <iostream>
#include <sstream>

#include "args.h"
#include "commands.h"
#include "lm_common.h"
#include "loom/core/error.h"
#include "loom/data/file_util.h"
#include "loom/text/utf8_check.h"

namespace loom::cli {

namespace {

const char* kTokHelp =
    "SPEC: gpt2 | bpe:PATH (encoder.json + vocab.bpe) | char (vocabulary = the characters of the input FILE\n"
    "itself; add --save-tokenizer to keep it for detokenize) | char:CORPUS (vocabulary from CORPUS's characters)\n"
    "| a saved tokenizer: a tokenizer.json file, a BPE directory, or a run folder from `loom train`.";

std::string read_input(const std::string& path) {
  if (path != "-") return data::read_file(path);
  std::ostringstream s;
  s << std::cin.rdbuf();
  return s.str();
}

// Lines split on '\n' only (a '\r' stays in its line, so \r\n text round-trips); a final '\n' ends the last
// line rather than starting an empty one.
std::vector<std::string> split_lines(const std::string& s) {
  std::vector<std::string> lines;
  size_t b = 0;
  while (b < s.size()) {
    size_t e = s.find('\n', b);
    if (e == std::string::npos) e = s.size();
    lines.push_back(s.substr(b, e - b));
    b = e + 1;
  }
  return lines;
}

void print_ids(const std::vector<int64_t>& ids) {
  std::string line;
  for (size_t i = 0; i < ids.size(); ++i) {
    if (i) line += ' ';
    line += std::to_string(ids[i]);
  }
  std::cout << line << "\n";
}

std::vector<int64_t> parse_ids(const std::string& line, int64_t vocab, size_t line_no) {
  std::vector<int64_t> ids;
  std::istringstream in(line);
  for (std::string w; in >> w;) {
    int64_t v;
    try {
      v = parse_int(w, "token id");
    } catch (const UsageError&) {
      LOOM_FAIL("line ", line_no, ": '", w, "' is not a token id (expected integers separated by spaces)");
    }
    LOOM_CHECK(v >= 0 && v < vocab, "line ", line_no, ": token id ", v, " is outside the vocabulary [0, ", vocab, ")");
    ids.push_back(v);
  }
  return ids;
}

}  // namespace

int cmd_tokenize(const Argv& argv) {
  std::string spec, save, errors = "replace";
  bool per_line = false;
  std::vector<std::string> files;
  Args a("loom tokenize", std::string("Print the token ids of FILE ('-' for stdin), separated by spaces.\n") + kTokHelp);
  a.option("--tokenizer", &spec, "SPEC", "the tokenizer (required, see above)");
  a.flag("--per-line", &per_line, "one output line per input line (lines split on \\n only; \\r is kept)");
  a.option("--save-tokenizer", &save, "PATH", "also write the tokenizer there (a char vocabulary as JSON)");
  a.choice("--errors", &errors, {"replace", "strict"},
           "invalid UTF-8 in FILE: replace (default; read as U+FFFD, with a warning naming the byte offset) or "
           "strict (stop with an error)");
  a.positionals(&files, "FILE", "the text to tokenize", 1);
  a.parse(argv);
  if (spec.empty()) throw UsageError("--tokenizer is required (gpt2, char, char:FILE, bpe:PATH or a saved tokenizer)");
  if (files.size() != 1) throw UsageError("give exactly one FILE");
  const std::string input = read_input(files[0]);
  text::check_utf8(input, files[0] == "-" ? "<stdin>" : files[0], text::parse_utf8_errors(errors));
  text::TokenizerPtr tok = tokenizer_from_spec(spec, input);
  if (!save.empty()) tok->save(save);
  if (!per_line) {
    print_ids(tok->encode(input));
  } else {
    for (const auto& line : split_lines(input)) print_ids(tok->encode(line));
  }
  std::cout.flush();
  return 0;
}

int cmd_detokenize(const Argv& argv) {
  std::string spec;
  bool per_line = false;
  std::vector<std::string> files;
  Args a("loom detokenize", std::string("Turn space-separated token ids in FILE ('-' for stdin) back into text.\n") +
                                kTokHelp + "\n(plain `char` has no input text to build a vocabulary from: use char:CORPUS or a saved one)");
  a.option("--tokenizer", &spec, "SPEC", "the tokenizer (required)");
  a.flag("--per-line", &per_line, "each input line is one text, printed with a \\n after it");
  a.positionals(&files, "FILE", "the ids", 1);
  a.parse(argv);
  if (spec.empty()) throw UsageError("--tokenizer is required (gpt2, char:FILE, bpe:PATH or a saved tokenizer)");
  if (spec == "char")
    throw UsageError("--tokenizer char needs the vocabulary: use char:CORPUS, a tokenizer.json saved by "
                     "`loom tokenize --save-tokenizer`, or a run folder");
  if (files.size() != 1) throw UsageError("give exactly one FILE");
  const std::string input = read_input(files[0]);
  text::TokenizerPtr tok = tokenizer_from_spec(spec, "");
  if (per_line) {
    size_t n = 0;
    for (const auto& line : split_lines(input)) std::cout << decode_raw(*tok, parse_ids(line, tok->vocab_size(), ++n)) << "\n";
  } else {
    std::cout << decode_raw(*tok, parse_ids(input, tok->vocab_size(), 1));
  }
  std::cout.flush();
  return 0;
}

}  // namespace loom::cli
