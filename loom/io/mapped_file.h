// A read-only view of a whole file through mmap (MAP_PRIVATE): loaders copy weights out of it tensor by tensor
// and hand each tensor's source pages back to the kernel (release), so a load's peak memory stays near one copy
// of the weights instead of the file plus the model.
//   io::MappedFile m("model.gguf");                  // throws loom::Error naming the file
//   std::string_view all = m.bytes();  ... copy a range ...  m.release(off, n);
#pragma once
#include <cstdint>
#include <memory>
#include <string>
#include <string_view>

namespace loom::io {

class MappedFile {
 public:
  explicit MappedFile(const std::string& path);
  ~MappedFile();
  MappedFile(const MappedFile&) = delete;
  MappedFile& operator=(const MappedFile&) = delete;

  std::string_view bytes() const { return {static_cast<const char*>(base_), size_}; }
  // The mapping at offset, writable: its pages are private copy-on-write, so a write changes this process's copy of
  // the page, never the file. For weights used in place (runtime/gguf_gpt.cpp); never release() such a range, which
  // would drop the writes.
  char* data_at(uint64_t offset) const { return static_cast<char*>(base_) + offset; }
  const std::string& path() const { return path_; }
  // Drops this process's copies of the pages inside [offset, offset + n) (MADV_DONTNEED): the data stays readable
  // (touching it again re-reads the file), it just no longer counts against the process's memory. Partial pages at
  // either end are kept, since a neighbouring tensor may still need them.
  void release(uint64_t offset, uint64_t n) const;
  // Copies [offset, offset + n) to dst with pread, not through the mapping, so a loader copying weights out holds
  // one 1 MiB buffer beside its destination and none of the file's pages. (Copying from the mapping in 1 MiB pieces
  // handed back after each still peaked 3-5 MiB above the loaded model on Linux 6.18, which maps the file's large
  // folios whole at a fault: ~5% of a q4_0 GPT-2's file.) The bytes pass through the buffer rather than being read
  // straight into dst: on this project's VMs a page the kernel writes first costs a hypervisor exit at its first read
  // from user space (summing 400 MB read straight into fresh memory took 0.55 s against 0.07 s), while the buffer's
  // pages stay mapped and the copy out of it touches dst as memcpy does. Throws, naming the file, on a short read.
  void read(uint64_t offset, void* dst, size_t n) const;

 private:
  std::string path_;
  void* base_ = nullptr;
  size_t size_ = 0;
  int fd_ = -1;  // kept open for read(); closed with the mapping
  mutable std::unique_ptr<char[]> buffer_;  // read()'s, made at its first call
};

}  // namespace loom::io
