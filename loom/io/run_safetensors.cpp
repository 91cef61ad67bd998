// One load path for every route a run file can take (run_file_plain.h), so a manifest-checked run loads through the
// mapping like a plain one instead of through a whole-file string, its parsed tensors and then the model (~3x the
// file at peak). Streamed files are verified "copy, then hash the copy": each piece is copied out of the mapping into
// the model's memory and the copy is hashed, so what the digest vouches for is byte for byte what the model holds,
// even if the file were rewritten in place during the load (loom never does; another process might). Hashing the
// mapping first and copying it afterwards would read the file twice and could keep bytes that were never hashed.
#include "loom/io/run_safetensors.h"

#include <algorithm>
#include <cstring>

#include "loom/core/error.h"
#include "loom/io/mapped_file.h"
#include "loom/io/run_file.h"

namespace loom::io {

namespace {
// Pieces of 1 MiB: the load holds one piece of the file beside the model, not its largest tensor (as gguf_gpt.cpp).
constexpr uint64_t kPiece = uint64_t(1) << 20;
}  // namespace

RunSafetensors::RunSafetensors(const std::string& path) : path_(path), access_(run_file_access(path)) {
  if (access_.route == RunFileRoute::whole) {
    whole_ = read_run_file(path);  // checked and decrypted by the reader before this parse sees a byte
    layout_ = parse_safetensors_layout(std::string_view(whole_), path);
    return;
  }
  map_ = std::make_shared<MappedFile>(path);
  const std::string_view b = map_->bytes();
  if (access_.route == RunFileRoute::plain) {
    layout_ = parse_safetensors_layout(b, path);
  } else {
    try {
      // The header is parsed from a private copy that is hashed as it is taken (the parse reads each byte once).
      layout_ = parse_safetensors_layout(uint64_t(b.size()), [&](uint64_t off, void* dst, size_t n) {
        hash_up_to(off);
        std::memcpy(dst, b.data() + off, n);
        access_.digest->update(dst, n);
        hashed_ = off + n;
      }, path);
    } catch (const Error&) {
      explain_failure();
      throw;
    }
  }
  const uint64_t data_start = layout_.entries.empty() ? uint64_t(b.size()) : layout_.entries.front().begin;
  map_->release(0, data_start);
}

RunSafetensors::~RunSafetensors() = default;

std::string_view RunSafetensors::bytes() const { return map_ ? map_->bytes() : std::string_view(whole_); }

void RunSafetensors::hash_up_to(uint64_t offset) {
  if (access_.route != RunFileRoute::streamed) return;
  LOOM_CHECK(offset >= hashed_, "RunSafetensors: ", path_, ": tensors must be taken in file order (asked for byte ",
             offset, " after byte ", hashed_, " was hashed)");
  // Bytes no copy took (tensors the loader skips) are hashed straight from the mapping: nothing uses them.
  const std::string_view b = bytes();
  while (hashed_ < offset) {
    const uint64_t n = std::min(kPiece, offset - hashed_);
    access_.digest->update(b.data() + hashed_, size_t(n));
    map_->release(hashed_, n);
    hashed_ += n;
  }
}

void RunSafetensors::copy(const SafetensorsEntry& e, void* dst) {
  hash_up_to(e.begin);
  const std::string_view b = bytes();
  char* out = static_cast<char*>(dst);
  for (uint64_t at = e.begin; at < e.end; at += kPiece) {
    const uint64_t n = std::min(kPiece, e.end - at);
    if (map_)
      map_->read(at, out + (at - e.begin), size_t(n));  // pread: no file pages resident (mapped_file.h)
    else
      std::memcpy(out + (at - e.begin), b.data() + at, size_t(n));
    if (access_.route == RunFileRoute::streamed) access_.digest->update(out + (at - e.begin), size_t(n));
  }
  if (access_.route == RunFileRoute::streamed) hashed_ = e.end;
  if (e.dtype == DType::boolean)
    for (uint64_t i = 0; i < e.end - e.begin; ++i)
      LOOM_CHECK(uint8_t(out[i]) <= 1, path_, ": bool tensor '", e.name, "' holds byte ", int(uint8_t(out[i])),
                 " at element ", i);
}

std::shared_ptr<const MappedFile> RunSafetensors::mapping() const {
  return access_.route == RunFileRoute::plain ? map_ : nullptr;
}

void RunSafetensors::release(const SafetensorsEntry& e) {
  if (map_) map_->release(e.begin, e.end - e.begin);
}

void RunSafetensors::finish() {
  if (access_.route != RunFileRoute::streamed) return;
  hash_up_to(uint64_t(bytes().size()));
  access_.digest->finish();
}

void RunSafetensors::explain_failure() const {
  // The whole-file read checks the file first and throws the manifest's error naming the changed tensor; it returns
  // (and the caller's own error stands) when the file matches.
  if (access_.route == RunFileRoute::streamed) (void)read_run_file(path_);
}

void load_run_safetensors_into(const std::string& path, const std::function<void(RunSafetensors&)>& body) {
  RunSafetensors f(path);
  try {
    body(f);
  } catch (const Error&) {
    f.explain_failure();
    throw;
  }
  f.finish();
}

}  // namespace loom::io
