// A read-only view of a whole file through mmap (MAP_PRIVATE): loaders copy weights out of it tensor by tensor
// and hand each tensor's source pages back to the kernel (release), so a load's peak memory stays near one copy
// of the weights instead of the file plus the model.
//   io::MappedFile m("model.gguf");                  // throws loom::Error naming the file
//   std::string_view all = m.bytes();  ... copy a range ...  m.release(off, n);
#pragma once
#include <cstdint>
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
  const std::string& path() const { return path_; }
  // Drops this process's copies of the pages inside [offset, offset + n) (MADV_DONTNEED): the data stays readable
  // (touching it again re-reads the file), it just no longer counts against the process's memory. Partial pages at
  // either end are kept, since a neighbouring tensor may still need them.
  void release(uint64_t offset, uint64_t n) const;

 private:
  std::string path_;
  void* base_ = nullptr;
  size_t size_ = 0;
};

}  // namespace loom::io
