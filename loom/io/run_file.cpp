#include "loom/io/run_file.h"

#include <atomic>

#include "loom/data/file_util.h"
#include "loom/io/json_fields.h"
#include "loom/io/run_file_plain.h"

namespace loom::io {

namespace {
std::atomic<RunFileReader> g_reader{nullptr};
std::atomic<RunFilePlainCheck> g_plain{nullptr};
std::atomic<RunFileStreamCheck> g_stream{nullptr};
std::atomic<RunFileSealer> g_sealer{nullptr};
}

// A new reader drops the old reader's plain and stream checks: they vouched only for what the old reader would do.
void set_run_file_reader(RunFileReader reader) {
  g_plain.store(nullptr);
  g_stream.store(nullptr);
  g_reader.store(reader);
}
RunFileReader run_file_reader() { return g_reader.load(); }
void set_run_file_sealer(RunFileSealer sealer) { g_sealer.store(sealer); }
RunFileSealer run_file_sealer() { return g_sealer.load(); }

void set_run_file_plain_check(RunFilePlainCheck check) { g_plain.store(check); }

bool run_file_is_plain(const std::string& path) {
  if (!g_reader.load()) return true;
  const RunFilePlainCheck c = g_plain.load();
  return c && c(path);
}

void set_run_file_stream_check(RunFileStreamCheck check) { g_stream.store(check); }

RunFileAccess run_file_access(const std::string& path) {
  if (!g_reader.load()) return {};
  if (const RunFileStreamCheck s = g_stream.load()) return s(path);
  return {.route = run_file_is_plain(path) ? RunFileRoute::plain : RunFileRoute::whole, .digest = nullptr};
}

std::string read_run_file(const std::string& path) {
  const RunFileReader r = g_reader.load();
  return r ? r(path) : data::read_file(path);
}

SafetensorsFile load_run_safetensors(const std::string& path) {
  const RunFileReader r = g_reader.load();
  // A plain file is read straight into its tensors (no second, whole-file copy in a string).
  return r && !run_file_is_plain(path) ? parse_safetensors(r(path), path) : load_safetensors(path);
}

nlohmann::json read_run_json(const std::string& path) { return parse_json(read_run_file(path), path); }

}  // namespace loom::io
