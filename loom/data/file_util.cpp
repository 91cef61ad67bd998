#include "loom/data/file_util.h"

#include <cerrno>
#include <cstring>
#include <filesystem>
#include <fstream>

#include <zlib.h>

#include "loom/core/error.h"
#include "loom/core/limits.h"

namespace loom::data {

std::string read_file(const std::string& path) {
  // A folder opens fine with ifstream and reports a huge size; a FIFO or device has none: only regular files.
  std::error_code ec;
  const auto st = std::filesystem::status(path, ec);
  LOOM_CHECK(std::filesystem::exists(st), path, ": no such file");
  LOOM_CHECK(!std::filesystem::is_directory(st), path, ": is a folder, expected a file");
  LOOM_CHECK(std::filesystem::is_regular_file(st), path, ": is not a regular file (a device, pipe or socket)");
  std::ifstream f(path, std::ios::binary | std::ios::ate);
  LOOM_CHECK(f.is_open(), path, ": cannot open (", std::strerror(errno), ")");
  const std::streamoff n = f.tellg();
  LOOM_CHECK(n >= 0, path, ": cannot determine the file size");
  check_fits_in_memory(double(n), "reading " + path + " (" + std::to_string(n) + " bytes)");
  std::string s(size_t(n), '\0');
  f.seekg(0);
  f.read(s.data(), n);
  LOOM_CHECK(f.gcount() == n, path, ": read ", f.gcount(), " of ", n, " bytes");
  return s;
}

std::string gunzip(std::string_view gz, const std::string& path) {
  std::string out;
  size_t pos = 0;
  // A gzip file may hold several members back to back (`cat a.gz b.gz`); each is inflated in turn.
  while (pos < gz.size()) {
    LOOM_CHECK(gz.size() - pos >= 2 && uint8_t(gz[pos]) == 0x1f && uint8_t(gz[pos + 1]) == 0x8b, path,
               ": not gzip data at byte ", pos, pos ? " (trailing garbage after the gzip stream)" : "");
    z_stream zs{};
    LOOM_CHECK(inflateInit2(&zs, 16 + MAX_WBITS) == Z_OK, path, ": zlib could not be initialised");
    zs.next_in = reinterpret_cast<Bytef*>(const_cast<char*>(gz.data() + pos));
    zs.avail_in = uInt(gz.size() - pos);
    int rc = Z_OK;
    char buf[1 << 16];
    size_t next_check = size_t(1) << 26;  // a gzip bomb inflates ~1000x: check memory as the output doubles
    while (rc == Z_OK) {
      zs.next_out = reinterpret_cast<Bytef*>(buf);
      zs.avail_out = sizeof buf;
      rc = inflate(&zs, Z_NO_FLUSH);
      out.append(buf, sizeof buf - zs.avail_out);
      if (out.size() >= next_check) {
        try {
          check_fits_in_memory(2.0 * double(out.size()), path + ": inflating gzip data (" +
                                                             std::to_string(out.size()) + " bytes so far)");
        } catch (...) {
          inflateEnd(&zs);
          throw;
        }
        next_check *= 2;
      }
      // Z_BUF_ERROR with input left means no progress is possible; with none left, the stream was cut short.
      if (rc == Z_BUF_ERROR && zs.avail_in == 0) break;
    }
    const std::string msg = zs.msg ? zs.msg : "";
    const size_t used = size_t(zs.total_in);
    inflateEnd(&zs);
    if (rc == Z_BUF_ERROR) LOOM_FAIL(path, ": gzip data is truncated (ends after ", out.size(), " inflated bytes)");
    LOOM_CHECK(rc == Z_STREAM_END, path, ": corrupt gzip data (zlib: ",
               msg.empty() ? "error " + std::to_string(rc) : msg, ")");
    pos += used;
  }
  return out;
}

std::string read_file_maybe_gzip(const std::string& path) {
  std::string s = read_file(path);
  if (s.size() >= 2 && uint8_t(s[0]) == 0x1f && uint8_t(s[1]) == 0x8b) return gunzip(s, path);
  return s;
}

}  // namespace loom::data
