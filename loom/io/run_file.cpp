#include "loom/io/run_file.h"

#include <atomic>

#include "loom/data/file_util.h"
#include "loom/io/json_fields.h"

namespace loom::io {

namespace {
std::atomic<RunFileReader> g_reader{nullptr};
std::atomic<RunFileSealer> g_sealer{nullptr};
}

void set_run_file_reader(RunFileReader reader) { g_reader.store(reader); }
RunFileReader run_file_reader() { return g_reader.load(); }
void set_run_file_sealer(RunFileSealer sealer) { g_sealer.store(sealer); }
RunFileSealer run_file_sealer() { return g_sealer.load(); }

std::string read_run_file(const std::string& path) {
  const RunFileReader r = g_reader.load();
  return r ? r(path) : data::read_file(path);
}

SafetensorsFile load_run_safetensors(const std::string& path) {
  const RunFileReader r = g_reader.load();
  return r ? parse_safetensors(r(path), path) : load_safetensors(path);
}

nlohmann::json read_run_json(const std::string& path) { return parse_json(read_run_file(path), path); }

}  // namespace loom::io
