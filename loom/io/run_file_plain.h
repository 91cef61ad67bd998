// How a run file may be read without the installed run-file reader (run_file.h) handing over the whole file as a
// string: large loaders then map the file and copy tensor by tensor (near one copy of the weights at peak).
//   plain    the reader would hand back the file's own bytes unchecked (no manifest, no signature required, not
//            encrypted): map and copy.
//   streamed the reader would only compare the file with a hash (a manifest, perhaps signed): map and copy, feeding
//            the digest with every byte as copied, and call finish() before the model is used.
//   whole    the reader must see the whole file (decryption, or a reader that installed no stream check).
//   io::RunFileAccess a = io::run_file_access(path);   // io/run_safetensors.h does all of this for safetensors
//   if (a.route == io::RunFileRoute::whole) parse(io::read_run_file(path)); else { map, copy, a.digest->update(...) }
#pragma once
#include <cstddef>
#include <memory>
#include <string>

namespace loom::io {

using RunFilePlainCheck = bool (*)(const std::string& path);

// Installs the check that goes with the installed reader (nullptr: every file goes through the reader).
void set_run_file_plain_check(RunFilePlainCheck check);

// True when no reader is installed, or the installed reader's check says `path` needs none of its work.
bool run_file_is_plain(const std::string& path);

// What the reader's check would compute over a file's bytes, fed in file order, each byte once. finish() throws the
// same loom::Error the reader throws for the same file when the bytes differ from what the run lists (naming the
// changed file or tensor); it returns normally only when every byte matched.
class RunFileDigest {
 public:
  virtual ~RunFileDigest() = default;
  virtual void update(const void* bytes, size_t n) = 0;
  virtual void finish() = 0;
};

enum class RunFileRoute { plain, streamed, whole };
struct RunFileAccess {
  RunFileRoute route = RunFileRoute::plain;
  std::unique_ptr<RunFileDigest> digest;  // set only for streamed
};

// Installed with the reader (loom::trust): decides the route for `path` and, for streamed, makes the digest. It may
// throw what the reader would throw before reading any data (a required signature missing or wrong, a file the
// manifest does not list).
using RunFileStreamCheck = RunFileAccess (*)(const std::string& path);
void set_run_file_stream_check(RunFileStreamCheck check);

// The route for `path`: plain without a reader; else the installed stream check's answer; else plain when the
// plain check says so, whole otherwise.
RunFileAccess run_file_access(const std::string& path);

}  // namespace loom::io
