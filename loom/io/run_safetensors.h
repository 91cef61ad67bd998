// A run's safetensors file opened for loading straight into a model's tensors, whatever route the run's checks allow
// (run_file_plain.h): mapped and copied piece by piece (plain), the same with every copied byte hashed against the
// run's manifest (streamed), or the checked / decrypted bytes in memory (whole: encrypted runs).
//   io::load_run_safetensors_into(path, [&](io::RunSafetensors& f) {
//     for (const auto& e : f.layout().entries) f.copy(e, destination_of(e.name).raw_data());
//   });   // returns only once the manifest (if any) agreed with every byte, copied or not
#pragma once
#include <functional>
#include <memory>
#include <string>
#include <string_view>

#include "loom/io/run_file_plain.h"
#include "loom/io/safetensors_layout.h"

namespace loom::io {

class MappedFile;

class RunSafetensors {
 public:
  // Opens `path` on the route run_file_access gives and parses its header (checked as load_safetensors checks it).
  explicit RunSafetensors(const std::string& path);
  ~RunSafetensors();
  RunSafetensors(const RunSafetensors&) = delete;
  RunSafetensors& operator=(const RunSafetensors&) = delete;

  const SafetensorsLayout& layout() const { return layout_; }
  const std::string& path() const { return path_; }
  RunFileRoute route() const { return access_.route; }

  // Copies entry e's bytes to dst (e.end - e.begin bytes) in 1 MiB pieces: each piece is copied, then (streamed) the
  // copy is hashed, so the bytes hashed are the bytes kept, then the piece's file pages are handed back. Entries are
  // taken in file order (layout().entries' order); any left out are hashed from the file as the next copy or
  // finish() passes them. Bool tensors are checked for 0/1 bytes as load_safetensors checks them.
  void copy(const SafetensorsEntry& e, void* dst);
  void release(const SafetensorsEntry& e);
  // The file's mapping, for weights used where they lie (io/mapped_weights.h; an entry's bytes start at e.begin);
  // null where no bytes may be used in place: a streamed file, whose bytes are vouched for only as copied (the file
  // could change between the hash and the use), or one read whole (checked or decrypted in memory).
  std::shared_ptr<const MappedFile> mapping() const;
  // Hashes what no copy() took and asks the digest for its verdict (throws the manifest's error). Plain and whole:
  // nothing to do.
  void finish();
  // For an error met while loading: when the file itself differs from its manifest, throws that error (what the
  // whole-file read reports first) in place of the symptom; else returns, and the caller rethrows its own.
  void explain_failure() const;

 private:
  void hash_up_to(uint64_t offset);
  std::string_view bytes() const;

  std::string path_;
  RunFileAccess access_;
  std::shared_ptr<MappedFile> map_;  // plain and streamed
  std::string whole_;                // whole: the reader's (checked, decrypted) bytes
  SafetensorsLayout layout_;
  uint64_t hashed_ = 0;              // streamed: bytes [0, hashed_) of the file went into the digest
};

// Opens `path`, runs body on it, then finish(): the loaded tensors may be used once this returns. An error inside
// (a tensor the model lacks, a bad header) is reported as the manifest's error when the file was changed.
void load_run_safetensors_into(const std::string& path, const std::function<void(RunSafetensors&)>& body);

}  // namespace loom::io
