// Shares are reduced to [0, 2^48) before they leave a client, so up to 2^15 of them sum in an int64 without
// overflow (an MPI sum of int64 then needs no modular arithmetic of its own); unmask reduces the total again.
#include "loom/privacy/secure_agg.h"

#include <sodium.h>

#include <cmath>
#include <cstring>

#include "loom/core/error.h"
#include "loom/ops/creation.h"
#include "loom/trust/sodium_init.h"

namespace loom::privacy {

namespace {
constexpr uint64_t kMask = (uint64_t(1) << SecureAggregation::kModBits) - 1;
}

SecureAggregation::SecureAggregation(int64_t clients, uint64_t seed) {
  trust::ensure_sodium();
  LOOM_CHECK(clients >= 1 && clients < (1 << 15), "secure aggregation: 1 to 32767 clients, got ", clients);
  for (int64_t c = 0; c < clients; ++c) {
    unsigned char s[crypto_box_SEEDBYTES] = {};
    std::memcpy(s, &seed, sizeof seed);
    std::memcpy(s + 8, &c, sizeof c);
    std::vector<unsigned char> pk(crypto_box_PUBLICKEYBYTES), sk(crypto_box_SECRETKEYBYTES);
    crypto_box_seed_keypair(pk.data(), sk.data(), s);
    pk_.push_back(std::move(pk));
    sk_.push_back(std::move(sk));
  }
}

Tensor SecureAggregation::mask(int64_t c, int64_t round, const Tensor& value,
                               const std::vector<int64_t>& participants) const {
  LOOM_CHECK(c >= 0 && c < int64_t(pk_.size()), "secure aggregation: client ", c, " out of range");
  const Tensor v = value.contiguous().to(DType::f32);
  const int64_t n = v.numel();
  Tensor out = empty({n}, {.dtype = DType::i64});
  const float* src = v.data<float>();
  auto* dst = reinterpret_cast<uint64_t*>(out.data<int64_t>());
  const double scale = std::ldexp(1.0, kFracBits);
  for (int64_t i = 0; i < n; ++i) dst[i] = uint64_t(int64_t(std::llround(double(src[i]) * scale))) & kMask;
  std::vector<uint64_t> m(static_cast<size_t>(n));
  for (int64_t other : participants) {
    if (other == c) continue;
    LOOM_CHECK(other >= 0 && other < int64_t(pk_.size()), "secure aggregation: client ", other, " out of range");
    // X25519 shared point, hashed with both public keys (in a fixed order) and the round into the PRG seed.
    unsigned char shared[crypto_scalarmult_BYTES];
    LOOM_CHECK(crypto_scalarmult(shared, sk_[size_t(c)].data(), pk_[size_t(other)].data()) == 0,
               "secure aggregation: key agreement failed");
    const int64_t lo = std::min(c, other), hi = std::max(c, other);
    unsigned char seed[randombytes_SEEDBYTES];
    crypto_generichash_state st;
    crypto_generichash_init(&st, nullptr, 0, sizeof seed);
    crypto_generichash_update(&st, shared, sizeof shared);
    crypto_generichash_update(&st, pk_[size_t(lo)].data(), pk_[size_t(lo)].size());
    crypto_generichash_update(&st, pk_[size_t(hi)].data(), pk_[size_t(hi)].size());
    crypto_generichash_update(&st, reinterpret_cast<const unsigned char*>(&round), sizeof round);
    crypto_generichash_final(&st, seed, sizeof seed);
    randombytes_buf_deterministic(m.data(), m.size() * sizeof(uint64_t), seed);
    sodium_memzero(shared, sizeof shared);
    // The lower-numbered client adds, the higher subtracts: the pair's masks cancel in the sum.
    for (int64_t i = 0; i < n; ++i) dst[i] = (c == lo ? dst[i] + m[size_t(i)] : dst[i] - m[size_t(i)]) & kMask;
  }
  return out;
}

Tensor SecureAggregation::unmask(const Tensor& summed) {
  LOOM_CHECK(summed.dtype() == DType::i64, "secure aggregation: shares must be i64, got ", summed.dtype());
  const Tensor s = summed.contiguous();
  const int64_t n = s.numel();
  Tensor out = empty({n});
  const auto* src = reinterpret_cast<const uint64_t*>(s.data<int64_t>());
  float* dst = out.data<float>();
  const double scale = std::ldexp(1.0, -kFracBits);
  for (int64_t i = 0; i < n; ++i) {
    uint64_t u = src[i] & kMask;
    // Back from modulo 2^48 to a signed value: the top half of the range is negative.
    const int64_t x = u >= (uint64_t(1) << (kModBits - 1)) ? int64_t(u) - (int64_t(1) << kModBits) : int64_t(u);
    dst[i] = float(double(x) * scale);
  }
  return out;
}

}  // namespace loom::privacy
