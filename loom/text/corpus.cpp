#include "loom/text/corpus.h"

#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <unistd.h>

#include "loom/core/error.h"
#include "loom/data/file_util.h"

namespace loom::text {

namespace fs = std::filesystem;

std::string cache_dir() {
  if (const char* d = std::getenv("LOOM_CACHE_DIR"); d && *d) return d;
  if (const char* x = std::getenv("XDG_CACHE_HOME"); x && *x) return (fs::path(x) / "loom").string();
  const char* home = std::getenv("HOME");
  return (fs::path(home ? home : ".") / ".cache" / "loom").string();
}

namespace {

bool is_alpha(char c) { return (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z'); }
bool is_digit(char c) { return c >= '0' && c <= '9'; }

// Length of the match of ^[0-9]?[A-Za-z]+[0-9]+:[0-9]+<space> at the start of `line`, or 0. Greedy matching
// with no backtracking suffices: the classes that follow one another do not overlap.
size_t reference_length(std::string_view line) {
  size_t i = 0;
  if (i < line.size() && is_digit(line[i])) ++i;
  const size_t letters = i;
  while (i < line.size() && is_alpha(line[i])) ++i;
  if (i == letters) return 0;
  const size_t chapter = i;
  while (i < line.size() && is_digit(line[i])) ++i;
  if (i == chapter || i >= line.size() || line[i] != ':') return 0;
  const size_t verse = ++i;
  while (i < line.size() && is_digit(line[i])) ++i;
  if (i == verse || i >= line.size() || line[i] != ' ') return 0;
  return i + 1;
}

std::string run_bible() {
  const char* cmd = "bible -f \"Gen1:1-Rev22:21\"";
  FILE* p = ::popen(cmd, "r");
  LOOM_CHECK(p != nullptr, "load_kjv: cannot run `", cmd, "`");
  std::string out;
  char buf[1 << 16];
  size_t n;
  while ((n = std::fread(buf, 1, sizeof buf, p)) > 0) out.append(buf, n);
  const int status = ::pclose(p);
  LOOM_CHECK(status == 0 && !out.empty(), "load_kjv: `", cmd, "` failed (exit status ", status,
             "); install Debian's bible-kjv and bible-kjv-text (scripts/install_deps.sh does)");
  return out;
}

}  // namespace

std::string strip_verse_references(std::string_view text) {
  std::string out;
  out.reserve(text.size());
  size_t line_no = 0;
  for (size_t pos = 0; pos < text.size();) {
    size_t end = text.find('\n', pos);
    const bool has_newline = end != std::string_view::npos;
    if (!has_newline) end = text.size();
    std::string_view line = text.substr(pos, end - pos);
    ++line_no;
    const size_t ref = reference_length(line);
    LOOM_CHECK(ref > 0, "load_kjv: line ", line_no, " of the bible output has no verse reference: \"",
               std::string(line.substr(0, 80)), "\"");
    out.append(line.substr(ref));
    if (has_newline) out += '\n';
    pos = end + 1;
  }
  return out;
}

std::string kjv_path(const std::string& cache_file) {
  const fs::path path = cache_file.empty() ? fs::path(cache_dir()) / "kjv.txt" : fs::path(cache_file);
  if (fs::is_regular_file(path) && fs::file_size(path) > 0) return path.string();
  const std::string text = strip_verse_references(run_bible());
  std::error_code ec;
  if (path.has_parent_path()) fs::create_directories(path.parent_path(), ec);
  // Written under a temporary name and renamed, so a concurrent reader never sees half a file.
  const fs::path tmp = path.string() + ".tmp" + std::to_string(::getpid());
  {
    std::ofstream f(tmp, std::ios::binary);
    f.write(text.data(), std::streamsize(text.size()));
    f.close();
    LOOM_CHECK(f.good(), "load_kjv: cannot write the cache file ", tmp.string());
  }
  fs::rename(tmp, path, ec);
  LOOM_CHECK(!ec, "load_kjv: cannot move ", tmp.string(), " to ", path.string(), ": ", ec.message());
  return path.string();
}

std::string load_kjv(const std::string& cache_file) { return data::read_file(kjv_path(cache_file)); }

std::string load_corpus(const std::string& spec) {
  if (spec == "kjv") return load_kjv();
  if (spec.starts_with("text:") && spec.size() > 5) return data::read_file(spec.substr(5));
  LOOM_FAIL("load_corpus: unknown corpus \"", spec, "\"; expected kjv or text:FILE");
}

}  // namespace loom::text
