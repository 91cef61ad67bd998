#include "loom/io/mapped_file.h"

#include <algorithm>
#include <cerrno>
#include <cstring>

#include <fcntl.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include "loom/core/error.h"

namespace loom::io {

MappedFile::MappedFile(const std::string& path) : path_(path) {
  const int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
  LOOM_CHECK(fd >= 0, path, ": cannot open (", std::strerror(errno), ")");
  struct stat st {};
  if (::fstat(fd, &st) != 0 || !S_ISREG(st.st_mode)) {
    const bool dir = S_ISDIR(st.st_mode);
    ::close(fd);
    LOOM_FAIL(path, dir ? ": is a folder, expected a file" : ": is not a regular file");
  }
  size_ = size_t(st.st_size);
  if (size_ > 0) {
    // MAP_PRIVATE: nothing done through the mapping reaches the file. Writable, so that weights used in place (data_at)
    // behave as any tensor when written: the kernel copies the page on the first write. The mapping keeps the file's
    // pages reachable after close, and after the file is unlinked or renamed over (how loom replaces files). A file
    // rewritten in place by another process while mapped may show the new bytes in pages not read yet; loom never
    // writes in place (temp file + rename).
    base_ = ::mmap(nullptr, size_, PROT_READ | PROT_WRITE, MAP_PRIVATE, fd, 0);
    if (base_ == MAP_FAILED) {
      const int e = errno;
      ::close(fd);
      base_ = nullptr;
      LOOM_FAIL(path, ": cannot map the file into memory (", std::strerror(e), ")");
    }
    // Loaders walk the tensors front to back: ask for generous read-ahead.
    ::madvise(base_, size_, MADV_SEQUENTIAL);
  }
  fd_ = fd;
}

MappedFile::~MappedFile() {
  if (base_) ::munmap(base_, size_);
  if (fd_ >= 0) ::close(fd_);
}

void MappedFile::read(uint64_t offset, void* dst, size_t n) const {
  LOOM_CHECK(offset <= size_ && n <= size_ - offset, path_, ": read of ", n, " bytes at ", offset, " is past the end (",
             size_, " bytes)");
  constexpr size_t kBuffer = size_t(1) << 20;
  if (!buffer_) buffer_ = std::make_unique<char[]>(kBuffer);
  char* out = static_cast<char*>(dst);
  while (n > 0) {
    const size_t want = std::min(n, kBuffer);
    for (size_t got = 0; got < want;) {
      const ssize_t r = ::pread(fd_, buffer_.get() + got, want - got, off_t(offset + got));
      if (r < 0 && errno == EINTR) continue;
      LOOM_CHECK(r > 0, path_, ": cannot read ", want - got, " bytes at ", offset + got, " (",
                 r < 0 ? std::strerror(errno) : "the file became shorter while loading", ")");
      got += size_t(r);
    }
    std::memcpy(out, buffer_.get(), want);
    out += want, offset += want, n -= want;
  }
}

void MappedFile::release(uint64_t offset, uint64_t n) const {
  if (!base_ || offset >= size_) return;
  n = std::min<uint64_t>(n, size_ - offset);
  const uint64_t page = uint64_t(::sysconf(_SC_PAGESIZE));
  const uint64_t begin = (offset + page - 1) / page * page, end = (offset + n) / page * page;
  // Advice, not a requirement: a failure only means the pages stay resident a little longer.
  if (end > begin) ::madvise(static_cast<char*>(base_) + begin, end - begin, MADV_DONTNEED);
}

}  // namespace loom::io
