// SHA-256 (FIPS 180-4) with the x86 SHA extensions. The state lives in two registers in the order the round
// instruction wants (ABEF and CDGH); each 64-byte block takes 16 steps of 4 rounds: the four schedule words of the
// step (the block's own words for steps 0-3, then sha256msg1/msg2 from the previous four steps) plus the round
// constants, fed to sha256rnds2 two rounds at a time. The portable path is libsodium's (what manifests always used).
#include "loom/trust/sha256.h"

#include <sodium.h>

#include <atomic>
#include <cstdlib>
#include <cstring>
#include <new>

#include "loom/backend/cpu/isa.h"
#include "loom/trust/sodium_init.h"

#if defined(__x86_64__)
#include <cpuid.h>
#include <immintrin.h>
#define LOOM_SHA_NI 1
#endif

namespace loom::trust {

static_assert(sizeof(crypto_hash_sha256_state) <= 128, "Sha256::sodium_ holds libsodium's state");

namespace {

std::atomic<bool> g_force_portable{false};

crypto_hash_sha256_state* sodium_state(unsigned char* p) {
  return std::launder(reinterpret_cast<crypto_hash_sha256_state*>(p));
}

#if LOOM_SHA_NI
bool cpu_has_sha() {
  unsigned a = 0, b = 0, c = 0, d = 0;
  if (!__get_cpuid(1, &a, &b, &c, &d)) return false;
  const bool ssse3 = c & (1u << 9), sse41 = c & (1u << 19);
  if (!__get_cpuid_count(7, 0, &a, &b, &c, &d)) return false;
  return ssse3 && sse41 && (b & (1u << 29));  // leaf 7 EBX bit 29: SHA
}

alignas(16) constexpr uint32_t kK[64] = {
    0x428a2f98, 0x71374491, 0xb5c0fbcf, 0xe9b5dba5, 0x3956c25b, 0x59f111f1, 0x923f82a4, 0xab1c5ed5,
    0xd807aa98, 0x12835b01, 0x243185be, 0x550c7dc3, 0x72be5d74, 0x80deb1fe, 0x9bdc06a7, 0xc19bf174,
    0xe49b69c1, 0xefbe4786, 0x0fc19dc6, 0x240ca1cc, 0x2de92c6f, 0x4a7484aa, 0x5cb0a9dc, 0x76f988da,
    0x983e5152, 0xa831c66d, 0xb00327c8, 0xbf597fc7, 0xc6e00bf3, 0xd5a79147, 0x06ca6351, 0x14292967,
    0x27b70a85, 0x2e1b2138, 0x4d2c6dfc, 0x53380d13, 0x650a7354, 0x766a0abb, 0x81c2c92e, 0x92722c85,
    0xa2bfe8a1, 0xa81a664b, 0xc24b8b70, 0xc76c51a3, 0xd192e819, 0xd6990624, 0xf40e3585, 0x106aa070,
    0x19a4c116, 0x1e376c08, 0x2748774c, 0x34b0bcb5, 0x391c0cb3, 0x4ed8aa4a, 0x5b9cca4f, 0x682e6ff3,
    0x748f82ee, 0x78a5636f, 0x84c87814, 0x8cc70208, 0x90befffa, 0xa4506ceb, 0xbef9a3f7, 0xc67178f2};

__attribute__((target("sha,sse4.1,ssse3"))) void blocks_sha_ni(uint32_t* h, const unsigned char* p, size_t n) {
  // a..h (h[0..7]) -> ABEF (lane 3 = A, 2 = B, 1 = E, 0 = F) and CDGH.
  __m128i tmp = _mm_shuffle_epi32(_mm_loadu_si128(reinterpret_cast<const __m128i*>(h)), 0xB1);      // B A D C
  __m128i state1 = _mm_shuffle_epi32(_mm_loadu_si128(reinterpret_cast<const __m128i*>(h + 4)), 0x1B);  // H G F E
  __m128i state0 = _mm_alignr_epi8(tmp, state1, 8);   // F E B A: ABEF
  state1 = _mm_blend_epi16(state1, tmp, 0xF0);        // H G D C: CDGH
  const __m128i bswap = _mm_set_epi64x(0x0c0d0e0f08090a0bLL, 0x0405060700010203LL);  // big-endian words
  for (; n > 0; --n, p += 64) {
    const __m128i abef = state0, cdgh = state1;
    __m128i w[4];  // the last four steps' schedule words, w[i % 4] for step i
    for (int i = 0; i < 16; ++i) {
      __m128i& wi = w[i % 4];
      if (i < 4) {
        wi = _mm_shuffle_epi8(_mm_loadu_si128(reinterpret_cast<const __m128i*>(p + 16 * i)), bswap);
      } else {
        // W[t] = s1(W[t-2]) + W[t-7] + s0(W[t-15]) + W[t-16] for the step's four t.
        const __m128i& w4 = w[i % 4];  // step i-4 (about to be replaced)
        const __m128i& w3 = w[(i + 1) % 4];
        const __m128i& w2 = w[(i + 2) % 4];
        const __m128i& w1 = w[(i + 3) % 4];
        __m128i x = _mm_sha256msg1_epu32(w4, w3);
        x = _mm_add_epi32(x, _mm_alignr_epi8(w1, w2, 4));
        wi = _mm_sha256msg2_epu32(x, w1);
      }
      __m128i msg = _mm_add_epi32(wi, _mm_load_si128(reinterpret_cast<const __m128i*>(kK + 4 * i)));
      state1 = _mm_sha256rnds2_epu32(state1, state0, msg);  // two rounds: the new ABEF
      msg = _mm_shuffle_epi32(msg, 0x0E);
      state0 = _mm_sha256rnds2_epu32(state0, state1, msg);  // two more
    }
    state0 = _mm_add_epi32(state0, abef);
    state1 = _mm_add_epi32(state1, cdgh);
  }
  tmp = _mm_shuffle_epi32(state0, 0x1B);            // F E B A -> A B E F lanes reversed
  state1 = _mm_shuffle_epi32(state1, 0xB1);
  state0 = _mm_blend_epi16(tmp, state1, 0xF0);      // D C B A
  state1 = _mm_alignr_epi8(state1, tmp, 8);         // H G F E
  _mm_storeu_si128(reinterpret_cast<__m128i*>(h), state0);
  _mm_storeu_si128(reinterpret_cast<__m128i*>(h + 4), state1);
}
#endif

bool sha_ni_available() {
#if LOOM_SHA_NI
  static const bool ok = cpu_has_sha() && !cpu::isa_env_is_baseline(std::getenv("LOOM_ISA"));
  return ok;
#else
  return false;
#endif
}

}  // namespace

bool Sha256::accelerated() { return sha_ni_available() && !g_force_portable.load(); }
void Sha256::force_portable_for_testing(bool on) { g_force_portable.store(on); }

Sha256::Sha256() : fast_(accelerated()) {
  h_ = {0x6a09e667, 0xbb67ae85, 0x3c6ef372, 0xa54ff53a, 0x510e527f, 0x9b05688c, 0x1f83d9ab, 0x5be0cd19};
  if (!fast_) {
    ensure_sodium();
    crypto_hash_sha256_init(new (sodium_) crypto_hash_sha256_state);
  }
}

void Sha256::blocks(const unsigned char* p, size_t n_blocks) {
#if LOOM_SHA_NI
  blocks_sha_ni(h_.data(), p, n_blocks);
#else
  (void)p, (void)n_blocks;
#endif
}

void Sha256::update(const void* bytes, size_t n) {
  const auto* p = static_cast<const unsigned char*>(bytes);
  if (!fast_) {
    crypto_hash_sha256_update(sodium_state(sodium_), p, n);
    return;
  }
  total_ += n;
  if (buffered_ > 0) {
    const size_t take = std::min(n, 64 - buffered_);
    std::memcpy(buf_.data() + buffered_, p, take);
    buffered_ += take, p += take, n -= take;
    if (buffered_ < 64) return;
    blocks(buf_.data(), 1);
    buffered_ = 0;
  }
  blocks(p, n / 64);
  p += n / 64 * 64, n %= 64;
  std::memcpy(buf_.data(), p, n);
  buffered_ = n;
}

std::string Sha256::hex() {
  unsigned char d[32];
  if (!fast_) {
    crypto_hash_sha256_final(sodium_state(sodium_), d);
  } else {
    // Padding: 0x80, zeros to 56 mod 64, then the length in bits, big-endian.
    const uint64_t bits = total_ * 8;
    unsigned char pad[72] = {0x80};
    const size_t zeros = (buffered_ < 56 ? 56 : 120) - buffered_;
    for (int i = 0; i < 8; ++i) pad[zeros + size_t(i)] = static_cast<unsigned char>(bits >> (56 - 8 * i));
    update(pad, zeros + 8);
    for (int i = 0; i < 8; ++i)
      for (int j = 0; j < 4; ++j) d[4 * i + j] = static_cast<unsigned char>(h_[size_t(i)] >> (24 - 8 * j));
  }
  char hex[65];
  sodium_bin2hex(hex, sizeof hex, d, sizeof d);
  return hex;
}

}  // namespace loom::trust
