// Streaming SHA-256 for manifests (trust/manifest.h) and for files hashed as they are loaded (trust/load.cpp): the
// CPU's SHA extensions when it has them (x86 SHA-NI: AMD Zen, Intel Ice Lake and later), else libsodium's portable
// code. Same digests; the extensions hash ~7x faster here (~1.5 vs ~0.2 GB/s), most of a checked load's hash time.
//   trust::Sha256 h;  h.update(bytes.data(), bytes.size());  ...  std::string hex = h.hex();
#pragma once
#include <array>
#include <cstddef>
#include <cstdint>
#include <string>

namespace loom::trust {

class Sha256 {
 public:
  Sha256();
  void update(const void* bytes, size_t n);
  // The digest of everything fed so far, as 64 lowercase hex digits. Ends the hash: call once.
  std::string hex();

  // Whether this process hashes with the SHA extensions (CPUID, and LOOM_ISA=baseline turns them off).
  static bool accelerated();
  // Tests only: true makes accelerated() false for hashes started afterwards, so one test compares both paths.
  static void force_portable_for_testing(bool on);

 private:
  void blocks(const unsigned char* p, size_t n_blocks);
  bool fast_;
  std::array<uint32_t, 8> h_{};             // the chaining state (SHA-NI path)
  std::array<unsigned char, 64> buf_{};     // a partial block waiting for more bytes
  size_t buffered_ = 0;
  uint64_t total_ = 0;
  alignas(64) unsigned char sodium_[128]{};  // crypto_hash_sha256_state (portable path; 104 bytes in libsodium)
};

}  // namespace loom::trust
