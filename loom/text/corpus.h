// Text corpora for language models: the King James Bible (Debian's bible-kjv) and plain files.
//   std::string kjv = text::load_corpus("kjv");           // 31,102 verses, one per line, ~4.1 MB
//   std::string mine = text::load_corpus("text:notes.txt");
//   std::string path = text::kjv_path();                  // the cached extraction, made on first use
#pragma once
#include <string>
#include <string_view>

namespace loom::text {

// $LOOM_CACHE_DIR, else $XDG_CACHE_HOME/loom, else ~/.cache/loom (not created here).
std::string cache_dir();

// The KJV as ../shared/WORKLOADS.md defines it: the output of `bible -f "Gen1:1-Rev22:21"` (run through
// popen) with each line's "Book1:1 " reference removed, as the sed command `s/^[0-9]?[A-Za-z]+[0-9]+:[0-9]+ //`
// does. The bible program decompresses its own data file (/usr/lib/bible.data), so running it is simpler
// and safer than reading that format. The text is cached at `cache_file` (default cache_dir()/kjv.txt) and
// read from there afterwards; a line without a reference, or a failing `bible`, throws loom::Error.
std::string kjv_path(const std::string& cache_file = {});
std::string load_kjv(const std::string& cache_file = {});
// Strips the verse references from the output of `bible -f` (exposed for tests).
std::string strip_verse_references(std::string_view bible_output);

// "kjv" or "text:FILE" (the file's bytes, unchanged). Throws loom::Error naming the spec otherwise.
std::string load_corpus(const std::string& spec);

}  // namespace loom::text
