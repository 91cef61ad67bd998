// Whether a run file may bypass the installed run-file reader (run_file.h) and be read straight from disk: true when
// the reader would hand back the file's own bytes unchecked (no manifest to check, no signature required, not
// encrypted). Large loaders then map the file and copy tensor by tensor (near one copy of the weights at peak)
// instead of holding the whole file in a string while they parse it. loom::trust installs the check with its reader.
//   if (io::run_file_is_plain(path)) { io::MappedFile m(path); ... } else { parse(io::read_run_file(path)); }
#pragma once
#include <string>

namespace loom::io {

using RunFilePlainCheck = bool (*)(const std::string& path);

// Installs the check that goes with the installed reader (nullptr: every file goes through the reader).
void set_run_file_plain_check(RunFilePlainCheck check);

// True when no reader is installed, or the installed reader's check says `path` needs none of its work.
bool run_file_is_plain(const std::string& path);

}  // namespace loom::io
